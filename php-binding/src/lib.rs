// The PHP extension (issue 3).
