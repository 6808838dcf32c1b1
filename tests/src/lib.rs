//! Cross-crate integration tests: multi-process and crash tests live in tests/tests/.
