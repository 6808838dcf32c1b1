--TEST--
Status page under PHP-FPM: refused without a password, Basic login through HTTP_AUTHORIZATION, the password from the pool's env[], delete only by POST with the session's token
--SKIPIF--
<?php
if (!is_executable('/usr/sbin/php-fpm8.2')) die('skip php-fpm8.2 is not installed');
if (!function_exists('posix_geteuid') || posix_geteuid() !== 0) die('skip needs root (php-fpm -R)');
?>
--EXTENSIONS--
posix
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$dir = sys_get_temp_dir() . '/apcdb-phpt-status-' . getmypid();
@mkdir($dir, 0700);
mkdir("$dir/www");
mkdir("$dir/sessions");
// A copy, so a config.php kept beside the real page plays no part.
copy(dirname(__DIR__, 2) . '/php-binding/status/index.php', "$dir/www/index.php");
$page = "$dir/www/index.php";
$store = "$dir/site.db";
echo apcdb_run(['apcdb.file' => $store], 'apc_store("<b>bold</b>", 1); apc_store("keep", 2); echo "filled\n";');

$pool = function (string $name, string $extra) use ($dir, $store) {
    return "[$name]\nuser = root\ngroup = root\nlisten = $dir/$name.sock\nlisten.mode = 0600\npm = static\n"
         . "pm.max_children = 1\nphp_admin_value[apcdb.file] = $store\n"
         . "php_admin_value[session.save_path] = $dir/sessions\nphp_admin_value[display_errors] = stderr\n$extra\n";
};
file_put_contents("$dir/fpm.conf", "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n\n"
    . $pool('open', '') . $pool('locked', "env[APCDB_STATUS_PASSWORD] = s3cret\n"));
$fpm = proc_open(['/usr/sbin/php-fpm8.2', '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'extension=' . apcdb_ext()],
    [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
register_shutdown_function(function () use ($fpm, $dir) {
    proc_terminate($fpm, 15);
    proc_close($fpm);
    exec('rm -rf ' . escapeshellarg($dir));
});
for ($i = 0; $i < 100 && !(file_exists("$dir/open.sock") && file_exists("$dir/locked.sock")); $i++) usleep(50000);

/** One FastCGI request: [status, headers, body]. */
function fcgi(string $sock, string $script, string $method, array $headers = [], string $body = ''): array {
    $s = stream_socket_client("unix://$sock", $errno, $errstr, 5);
    $rec = function (int $type, string $c): string {
        $pad = (8 - strlen($c) % 8) % 8;
        return pack('CCnnCC', 1, $type, 1, strlen($c), $pad, 0) . $c . str_repeat("\0", $pad);
    };
    $nv = function (string $n, string $v): string {
        $enc = fn(int $l) => $l < 128 ? chr($l) : pack('N', $l | 0x80000000);
        return $enc(strlen($n)) . $enc(strlen($v)) . $n . $v;
    };
    $params = ['SCRIPT_FILENAME' => $script, 'SCRIPT_NAME' => '/status/index.php', 'REQUEST_URI' => '/status/',
        'QUERY_STRING' => '', 'REQUEST_METHOD' => $method, 'SERVER_PROTOCOL' => 'HTTP/1.1',
        'GATEWAY_INTERFACE' => 'CGI/1.1', 'CONTENT_LENGTH' => (string) strlen($body),
        'CONTENT_TYPE' => 'application/x-www-form-urlencoded', 'SERVER_NAME' => 'localhost', 'REMOTE_ADDR' => '127.0.0.1'];
    foreach ($headers as $k => $v) $params['HTTP_' . strtoupper(str_replace('-', '_', $k))] = $v;
    $p = '';
    foreach ($params as $k => $v) $p .= $nv($k, $v);
    fwrite($s, $rec(1, pack('nCx5', 1, 0)) . $rec(4, $p) . $rec(4, '') . ($body !== '' ? $rec(5, $body) : '') . $rec(5, ''));
    $out = '';
    stream_set_timeout($s, 10);
    while (($h = fread($s, 8)) !== false && strlen($h) === 8) {
        $r = unpack('Cv/Ctype/nid/nlen/Cpad/Cres', $h);
        $b = $r['len'] + $r['pad'] > 0 ? stream_get_contents($s, $r['len'] + $r['pad']) : '';
        if ($r['type'] === 6) $out .= substr($b, 0, $r['len']);
        if ($r['type'] === 3) break;
    }
    fclose($s);
    [$head, $resp] = explode("\r\n\r\n", $out, 2) + ['', ''];
    $status = preg_match('/^Status: (\d+)/mi', $head, $m) ? (int) $m[1] : 200;
    return [$status, $head, $resp];
}
$keys = fn() => trim(apcdb_run(['apcdb.file' => $store], 'foreach (new APCIterator("user") as $k => $v) echo json_encode($k), " "; echo "\n";'));
$auth = ['Authorization' => 'Basic ' . base64_encode('apcdb:s3cret')];

[$st, , $b] = fcgi("$dir/open.sock", $page, 'GET', $auth);
echo "no password configured: $st ", strtok($b, "\n"), "\n";
[$st, $h] = fcgi("$dir/locked.sock", $page, 'GET');
echo "no credentials: $st ", preg_match('/^WWW-Authenticate: Basic/mi', $h) ? 'challenge' : 'no challenge', "\n";
[$st] = fcgi("$dir/locked.sock", $page, 'GET', ['Authorization' => 'Basic ' . base64_encode('apcdb:wrong')]);
echo "wrong password: $st\n";
[$st, $h, $b] = fcgi("$dir/locked.sock", $page, 'GET', $auth);
echo "logged in: $st, key shown as ", str_contains($b, '&lt;b&gt;bold&lt;/b&gt;') && !str_contains($b, '<b>bold') ? 'text' : 'markup', "\n";
preg_match('/^Set-Cookie: (apcdb_status=[^;]+)/mi', $h, $c);
preg_match('/name="token" value="([0-9a-f]+)"/', $b, $t);
$form = fn(string $token) => http_build_query(['action' => 'delete', 'key' => base64_encode('<b>bold</b>'), 'token' => $token]);
[$st] = fcgi("$dir/locked.sock", $page, 'POST', $auth + ['Cookie' => $c[1]], $form(strrev($t[1])));
echo "POST with a wrong token: $st; keys: ", $keys(), "\n";
[$st, $h] = fcgi("$dir/locked.sock", $page, 'POST', $auth + ['Cookie' => $c[1]], $form($t[1]));
echo "POST with the session's token: $st ", preg_match('/^Location: (\S+)/mi', $h, $m) ? $m[1] : '', "; keys: ", $keys(), "\n";
?>
--EXPECT--
filled
no password configured: 403 apcdb status: no password is configured, so this page is disabled.
no credentials: 401 challenge
wrong password: 401
logged in: 200, key shown as text
POST with a wrong token: 403; keys: "<b>bold<\/b>" "keep"
POST with the session's token: 303 /status/index.php?done=deleted; keys: "keep"
