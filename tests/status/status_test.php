<?php
/*
 * The status page (php-binding/status/index.php) end to end: a real `php -S` server with the
 * extension and a store in a temp directory, plain HTTP requests for the protection rules, and
 * Debian's Chromium in headless mode for a screenshot, the rendered DOM and a delete and a clear
 * clicked through the page over the DevTools protocol. The store is checked from outside with
 * `apcdb dump`. Run by tests/status/run.sh (make test-status); prints "N passed, N failed".
 *
 *   php -n -d extension=gd status_test.php EXT APCDB_BIN CHROMIUM PAGE_DIR
 */
declare(strict_types=1);

[, $EXT, $APCDB, $CHROMIUM, $PAGE_DIR] = $argv + [null, null, null, null, null];
foreach ([$EXT, $APCDB, $CHROMIUM, "$PAGE_DIR/index.php"] as $f) {
    if (!is_string($f) || !is_file($f)) {
        fwrite(STDERR, "usage: status_test.php EXT APCDB_BIN CHROMIUM PAGE_DIR (missing: $f)\n");
        exit(2);
    }
}
// The servers run in the temp directory: resolve relative paths now.
[$EXT, $APCDB, $CHROMIUM, $PAGE_DIR] = array_map('realpath', [$EXT, $APCDB, $CHROMIUM, $PAGE_DIR]);
if (!function_exists('imagecreatefrompng')) {
    fwrite(STDERR, "status_test.php needs PHP's gd (php8.2-gd) to read the screenshot\n");
    exit(2);
}
if (is_file('/etc/apcdb/status.php')) {
    fwrite(STDERR, "/etc/apcdb/status.php exists: the page would use it, so the no-password case cannot be tested here\n");
    exit(2);
}

$passed = 0;
$failed = 0;
function check(bool $ok, string $what, string $detail = ''): void
{
    global $passed, $failed;
    if ($ok) {
        $passed++;
        echo "ok     $what\n";
    } else {
        $failed++;
        echo "FAILED $what" . ($detail !== '' ? "\n       $detail" : '') . "\n";
    }
}

$tmp = sys_get_temp_dir() . '/apcdb-status-' . getmypid() . '-' . bin2hex(random_bytes(4));
mkdir($tmp, 0700);
mkdir("$tmp/www");
mkdir("$tmp/sessions");
// A copy of the page, so a config.php a developer keeps beside the real one plays no part.
copy("$PAGE_DIR/index.php", "$tmp/www/index.php");
$store = "$tmp/store.db";
$procs = [];
register_shutdown_function(function () use (&$procs, $tmp) {
    foreach ($procs as $p) {
        stop_process($p);
    }
    exec('rm -rf ' . escapeshellarg($tmp));
});

function stop_process($p): void
{
    if (!is_resource($p)) {
        return;
    }
    proc_terminate($p, 15);
    for ($i = 0; $i < 50 && proc_get_status($p)['running']; $i++) {
        usleep(100_000);
    }
    if (proc_get_status($p)['running']) {
        proc_terminate($p, 9);
    }
    proc_close($p);
}

function free_port(): int
{
    $s = stream_socket_server('tcp://127.0.0.1:0');
    $port = (int) substr(strrchr(stream_socket_get_name($s, false), ':'), 1);
    fclose($s);
    return $port;
}

function php_args(string $ext, string $store): array
{
    return [PHP_BINARY, '-n', '-d', "extension=$ext", '-d', "apcdb.file=$store"];
}

/** Starts `php -S` on the page copy; $env adds to this process's environment. */
function start_server(array $env): array
{
    global $EXT, $store, $tmp, $procs;
    $port = free_port();
    $cmd = array_merge(php_args($EXT, $store), ['-d', "session.save_path=$tmp/sessions", '-S', "127.0.0.1:$port", '-t', "$tmp/www"]);
    $p = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$tmp/server.log", 'a'], 2 => ['file', "$tmp/server.log", 'a']],
        $pipes, $tmp, getenv() + $env);
    $procs[] = $p;
    for ($i = 0; $i < 100; $i++) {
        $c = @stream_socket_client("tcp://127.0.0.1:$port", $en, $es, 1);
        if ($c) {
            fclose($c);
            return [$p, "http://127.0.0.1:$port"];
        }
        usleep(50_000);
    }
    throw new RuntimeException("php -S did not start:\n" . file_get_contents("$tmp/server.log"));
}

/** One HTTP request: [status, headers (lower-case names), body]. No redirects are followed. */
function http(string $method, string $url, array $headers = [], ?array $form = null): array
{
    $opts = ['method' => $method, 'ignore_errors' => true, 'follow_location' => 0, 'timeout' => 20,
        'header' => $headers, 'protocol_version' => 1.0];
    if ($form !== null) {
        $opts['content'] = http_build_query($form);
        $opts['header'][] = 'Content-Type: application/x-www-form-urlencoded';
    }
    $body = file_get_contents($url, false, stream_context_create(['http' => $opts]));
    $status = 0;
    $h = [];
    foreach ($http_response_header ?? [] as $line) {
        if (preg_match('#^HTTP/\S+ (\d{3})#', $line, $m)) {
            $status = (int) $m[1];
        } elseif (str_contains($line, ':')) {
            [$k, $v] = explode(':', $line, 2);
            $h[strtolower(trim($k))][] = trim($v);
        }
    }
    return [$status, $h, (string) $body];
}

function basic(string $user, string $pw): string
{
    return 'Authorization: Basic ' . base64_encode("$user:$pw");
}

/** The keys in the store, read by the `apcdb` tool (not through the page's PHP). */
function store_keys(): array
{
    global $APCDB, $store;
    exec(escapeshellarg($APCDB) . ' dump ' . escapeshellarg($store) . ' 2>/dev/null', $lines, $rc);
    if ($rc !== 0) {
        throw new RuntimeException("apcdb dump failed ($rc)");
    }
    return array_map(fn($l) => base64_decode(json_decode($l, true)['key']), $lines);
}

/** Session cookie and form token of a logged-in page view (a session of its own). */
function session_of(string $base, string $auth): array
{
    [$st, $h, $body] = http('GET', "$base/", [$auth]);
    $cookie = null;
    foreach ($h['set-cookie'] ?? [] as $c) {
        if (str_starts_with($c, 'apcdb_status=')) {
            $cookie = strtok($c, ';');
        }
    }
    preg_match('/name="token" value="([0-9a-f]+)"/', $body, $m);
    return [$st, $cookie, $m[1] ?? null];
}

// ---- a store with entries, among them keys that look like markup --------------------------------
$xss = '<script>alert(1)</script>';
$xssAttr = '"><img src=x onerror=alert(2)>';
$fill = proc_open(array_merge(php_args($EXT, $store), ['-r', '
    for ($i = 0; $i < 130; $i++) {
        apc_store("user:$i", str_repeat("v", 20 * $i), $i % 4 === 0 ? 3600 : 0);
    }
    apc_store($argv[1], "markup in a key");
    apc_store($argv[2], "markup in an attribute");
    apc_store("bin\xff\x00key", 42);
', $xss, $xssAttr]), [], $pipes);
check(proc_close($fill) === 0, 'the store is filled by a PHP process');
$all = store_keys();
check(count($all) === 133 && in_array($xss, $all, true), 'apcdb dump sees the 133 entries', count($all) . ' keys');

// ---- no password configured: refuses to serve ----------------------------------------------------
putenv('APCDB_STATUS_PASSWORD');
putenv('APCDB_STATUS_USER');
[$srv, $base] = start_server([]);
[$st, , $body] = http('GET', "$base/");
check($st === 403 && str_contains($body, 'no password is configured'), 'no password: GET refused with 403 and says why', "$st $body");
[$st, , $body] = http('GET', "$base/", [basic('apcdb', '')]);
check($st === 403, 'no password: an empty password does not log in', "$st");
[$st] = http('POST', "$base/", [basic('apcdb', 'x')], ['action' => 'clear', 'confirm' => 'yes']);
check($st === 403 && count(store_keys()) === 133, 'no password: POST clear refused, nothing deleted', "$st");
// A config file that names no password is an error too, never an open page.
file_put_contents("$tmp/www/config.php", "<?php return ['password' => ''];\n");
[$st, , $body] = http('GET', "$base/");
check($st === 500 && str_contains($body, 'non-empty password'), 'config.php with an empty password: 500 and says why', "$st $body");
// A password_hash() in config.php works.
file_put_contents("$tmp/www/config.php", '<?php return ' . var_export(['password' => password_hash('from-file', PASSWORD_DEFAULT), 'user' => 'ops'], true) . ";\n");
[$st] = http('GET', "$base/", [basic('ops', 'from-file')]);
[$st2] = http('GET', "$base/", [basic('ops', 'wrong')]);
check($st === 200 && $st2 === 401, 'config.php with a password hash: right password 200, wrong 401', "$st $st2");
unlink("$tmp/www/config.php");
stop_process($srv);

// ---- password in the environment ------------------------------------------------------------------
$pw = bin2hex(random_bytes(8));
[$srv, $base] = start_server(['APCDB_STATUS_PASSWORD' => $pw]);
$auth = basic('apcdb', $pw);
[$st, $h] = http('GET', "$base/");
check($st === 401 && str_starts_with($h['www-authenticate'][0] ?? '', 'Basic'), 'no credentials: 401 with a Basic challenge', "$st");
[$st] = http('GET', "$base/", [basic('apcdb', $pw . 'x')]);
check($st === 401, 'wrong password: 401', "$st");
[$st] = http('GET', "$base/", [basic('root', $pw)]);
check($st === 401, 'wrong user name: 401', "$st");
[$st] = http('POST', "$base/", [basic('apcdb', 'nope')], ['action' => 'clear', 'confirm' => 'yes']);
check($st === 401 && count(store_keys()) === 133, 'wrong password: POST refused, nothing deleted', "$st");

[$st, $h, $body] = http('GET', "$base/?q=" . rawurlencode('script'), [$auth]);
check($st === 200, 'right credentials: 200', "$st");
check(str_contains($body, htmlspecialchars($xss)) && !str_contains($body, $xss), 'a <script> key is escaped in the HTML');
check(!str_contains($body, $xssAttr) && !str_contains($body, '<img'), 'a key closing an attribute is escaped in the HTML');
check(str_contains($h['content-security-policy'][0] ?? '', "default-src 'none'"), 'the page forbids scripts by CSP');
check(preg_match_all('/<td class="key">/', $body) === 1, 'the search selects the one matching key');

[$st, , $body] = http('GET', "$base/?p=3", [$auth]);
check($st === 200 && preg_match_all('/<td class="key">/', $body) === 33 && str_contains($body, '133 entries; page 3 of 3'),
    'paging: page 3 holds the last 33 of 133 entries');

// ---- actions need POST, a session and its token ---------------------------------------------------
$k64 = base64_encode($xss);
[$st, $cookie, $token] = session_of($base, $auth);
check($st === 200 && $cookie !== null && $token !== null && strlen($token) === 64, 'the page sets a session cookie and a form token');
[$st] = http('GET', "$base/?" . http_build_query(['action' => 'delete', 'key' => $k64, 'token' => $token]), [$auth, "Cookie: $cookie"]);
check($st === 200 && in_array($xss, store_keys(), true), 'GET with the action and a valid token deletes nothing', "$st");
[$st] = http('POST', "$base/", [$auth, "Cookie: $cookie"], ['action' => 'delete', 'key' => $k64]);
check($st === 403 && in_array($xss, store_keys(), true), 'POST without a token: 403, nothing deleted', "$st");
[$st] = http('POST', "$base/", [$auth, "Cookie: $cookie"], ['action' => 'delete', 'key' => $k64, 'token' => str_repeat('0', 64)]);
check($st === 403 && in_array($xss, store_keys(), true), 'POST with a wrong token: 403, nothing deleted', "$st");
[, $cookie2, $token2] = session_of($base, $auth);
[$st] = http('POST', "$base/", [$auth, "Cookie: $cookie"], ['action' => 'delete', 'key' => $k64, 'token' => $token2]);
check($token2 !== $token && $st === 403 && in_array($xss, store_keys(), true), 'POST with the token of another session: 403, nothing deleted', "$st");
[$st] = http('POST', "$base/", [$auth], ['action' => 'delete', 'key' => $k64, 'token' => $token]);
check($st === 403 && in_array($xss, store_keys(), true), 'POST with a token but no session cookie: 403, nothing deleted', "$st");
[$st, $h] = http('POST', "$base/", [$auth, "Cookie: $cookie"], ['action' => 'clear', 'token' => $token]);
check($st === 303 && count(store_keys()) === 133 && str_contains($h['location'][0] ?? '', 'done=unconfirmed'),
    'clear without the confirmation box clears nothing', "$st");
[$st, $h] = http('POST', "$base/", [$auth, "Cookie: $cookie"], ['action' => 'delete', 'key' => base64_encode('user:7'), 'token' => $token]);
$keys = store_keys();
check($st === 303 && !in_array('user:7', $keys, true) && count($keys) === 132, 'POST with its session\'s token deletes that one entry', "$st " . count($keys));

// ---- Chromium: screenshot and rendered DOM ---------------------------------------------------------
$cred = rawurlencode('apcdb') . ':' . rawurlencode($pw) . '@' . substr($base, strlen('http://'));
$chromeFlags = ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--hide-scrollbars', "--user-data-dir=$tmp/chrome"];
$shot = "$tmp/status.png";
exec(implode(' ', array_map('escapeshellarg', array_merge([$CHROMIUM], $chromeFlags,
    ['--window-size=1280,1400', "--screenshot=$shot", "http://$cred/"]))) . " >$tmp/chrome.log 2>&1", $o, $rc);
check($rc === 0 && is_file($shot), 'chromium --screenshot of the page', "rc $rc: " . chrome_log($tmp));
if (is_file($shot)) {
    $img = @imagecreatefrompng($shot);
    check($img !== false && imagesx($img) === 1280 && imagesy($img) === 1400, 'the screenshot is a 1280x1400 PNG');
    if ($img !== false) {
        // Sample a grid: a blank, error or login page has a handful of colours; the rendered page
        // with its charts, text and table has many, and its dark header at the top.
        $colours = [];
        for ($y = 0; $y < imagesy($img); $y += 4) {
            for ($x = 0; $x < imagesx($img); $x += 4) {
                $colours[imagecolorat($img, $x, $y)] = true;
            }
        }
        $header = imagecolorat($img, 5, 5);
        $dark = ((($header >> 16) & 255) + (($header >> 8) & 255) + ($header & 255)) < 200;
        check(count($colours) >= 64 && filesize($shot) > 30_000 && $dark,
            'the screenshot is not trivial (colours, size, the header drawn)',
            count($colours) . ' colours, ' . filesize($shot) . ' bytes');
    }
}
exec(implode(' ', array_map('escapeshellarg', array_merge([$CHROMIUM], $chromeFlags,
    ['--dump-dom', "http://$cred/?q=" . rawurlencode('<')]))) . " 2>>$tmp/chrome.log", $dom, $rc);
$dom = implode("\n", $dom);
check($rc === 0 && str_contains($dom, '&lt;script&gt;alert(1)&lt;/script&gt;') && !str_contains($dom, '<script')
    && !str_contains($dom, '<img') && str_contains($dom, 'id="card-space"'),
    'the DOM Chromium built shows the markup keys as text, with no script or img element');

// ---- Chromium over the DevTools protocol: search, delete and clear by clicking ---------------------
require __DIR__ . '/cdp.php';
@unlink("$tmp/chrome/DevToolsActivePort"); // a stale one would name a port nobody listens on
$chrome = proc_open(array_merge([$CHROMIUM], $chromeFlags, ['--remote-debugging-port=0', '--window-size=1280,1000', 'about:blank']),
    [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$tmp/chrome.log", 'a'], 2 => ['file', "$tmp/chrome.log", 'a']], $pipes);
$procs[] = $chrome;
try {
    $cdp = Cdp::launchConnect("$tmp/chrome");
    $cdp->call('Page.enable');
    $cdp->call('Network.enable');
    $cdp->call('Network.setExtraHTTPHeaders', ['headers' => ['Authorization' => substr($auth, strlen('Authorization: '))]]);
    $cdp->navigate("$base/");
    check($cdp->eval('document.querySelectorAll("script").length') === 0, 'browser: the page holds no script element');
    $cdp->eval('document.querySelector("input[name=q]").value = "SCRIPT"; document.querySelector("form.search button").click(); true');
    $cdp->waitLoad();
    $rows = $cdp->eval('Array.from(document.querySelectorAll("td.key")).map(td => td.textContent)');
    check($rows === [$xss], 'browser: searching "SCRIPT" (any case) lists exactly the <script> key, as text', json_encode($rows));
    $cdp->eval('document.querySelector("button.delete").click(); true');
    $cdp->waitLoad();
    $notice = $cdp->eval('(document.getElementById("notice") || {}).textContent || ""');
    $keys = store_keys();
    check($notice === 'The entry was deleted.' && !in_array($xss, $keys, true) && count($keys) === 131,
        'browser: clicking Delete removed the entry from the store (apcdb dump)', "$notice, " . count($keys) . ' keys');
    $cdp->eval('document.querySelector("#clear button").click(); true');
    $cdp->waitLoad();
    check(count(store_keys()) === 131, 'browser: Clear all without the box ticked deletes nothing');
    $cdp->eval('document.querySelector("#clear input[name=confirm]").checked = true; document.querySelector("#clear button").click(); true');
    $cdp->waitLoad();
    check(store_keys() === [] && $cdp->eval('document.getElementById("entry-count").textContent') === '0',
        'browser: Clear all with the box ticked empties the store');
    $cdp->close();
} catch (Throwable $e) {
    check(false, 'browser session over the DevTools protocol', $e->getMessage() . "\n" . chrome_log($tmp));
}

echo "status page: $passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);

/** Chromium's log without its complaints about the missing D-Bus, for failure messages. */
function chrome_log(string $tmp): string
{
    $lines = preg_grep('/dbus|^\s*$/', @file("$tmp/chrome.log", FILE_IGNORE_NEW_LINES) ?: [], PREG_GREP_INVERT);
    return implode("\n", array_slice($lines, -15));
}
