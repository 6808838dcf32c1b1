--TEST--
Redis backend over TLS: apcdb.file=rediss://..., the server's certificate checked against apcdb.redis_ca_file (a throwaway CA made here with openssl); a certificate from another CA, or the system's CAs, refused with one warning and false
--SKIPIF--
<?php
if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)');
exec('command -v openssl 2>/dev/null', $o, $rc);
if ($rc !== 0) die('skip openssl is not installed');
?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
$dir = sys_get_temp_dir() . '/apcdb-phpt-tls-' . getmypid();
@mkdir($dir, 0700);
register_shutdown_function(fn() => exec('rm -rf ' . escapeshellarg($dir)));
function sh(string $cmd): void {
    exec($cmd . ' 2>&1', $out, $rc);
    if ($rc !== 0) { echo "failed: $cmd\n", implode("\n", $out), "\n"; exit(1); }
}
// A CA, a server certificate it signs (for 127.0.0.1), and a second CA that signed nothing.
$ext = "$dir/ext.cnf";
file_put_contents($ext, "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    . "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
foreach (['ca', 'other'] as $ca) {
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=apcdb-test-$ca"
        . " -keyout $dir/$ca.key -out $dir/$ca.pem");
}
sh("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout $dir/server.key -out $dir/server.csr");
sh("openssl x509 -req -in $dir/server.csr -CA $dir/ca.pem -CAkey $dir/ca.key -CAcreateserial"
    . " -days 2 -extfile $ext -out $dir/server.pem");

// The plain port stays open for this test's own checks; PHP talks to the TLS one.
$tls = apcdb_free_port();
[$port] = apcdb_redis_start(0, '', ['--tls-port', (string) $tls, '--tls-cert-file', "$dir/server.pem",
    '--tls-key-file', "$dir/server.key", '--tls-ca-cert-file', "$dir/ca.pem", '--tls-auth-clients', 'no']);
for ($i = 0; $i < 200; $i++) {
    $c = @stream_socket_client("tcp://127.0.0.1:$tls", $errno, $errstr, 1);
    if ($c) { fclose($c); break; }
    usleep(25000);
}
$url = "rediss://127.0.0.1:$tls/0";

echo "-- the right CA\n";
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_ca_file' => "$dir/ca.pem"], '
    var_dump(apc_store("k", ["v" => 1]), apc_fetch("k"), apc_add("n", 1), apc_inc("n", 2));
    var_dump(apc_entry("e", fn() => "made"), apc_entry("e", fn() => "again"));
    $n = 0; foreach (new APCIterator("user") as $e) $n++; var_dump($n);
');
// On the server, under the pool's prefix, in the same encoding as over plain TCP.
var_dump(apcdb_redis_cmd($port, ['GET', 'apcdb:n']));
echo "-- another CA\n";
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_ca_file' => "$dir/other.pem"],
    'var_dump(apc_fetch("k", $ok), $ok, apc_store("x", 1));');
echo "-- the system's CAs (no apcdb.redis_ca_file)\n";
echo apcdb_run(['apcdb.file' => $url], 'var_dump(apc_fetch("k"));');
echo "-- a CA file that does not exist\n";
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_ca_file' => "$dir/missing.pem"], 'var_dump(apc_fetch("k"));');
echo "-- a CA file with a redis:// URL (no TLS)\n";
echo apcdb_run(['apcdb.file' => "redis://127.0.0.1:$port/0", 'apcdb.redis_ca_file' => "$dir/ca.pem"],
    'var_dump(apc_fetch("k"));');
var_dump(apcdb_redis_cmd($port, ['EXISTS', 'apcdb:x']));
?>
--EXPECTF--
-- the right CA
bool(true)
array(1) {
  ["v"]=>
  int(1)
}
bool(true)
int(3)
string(4) "made"
string(4) "made"
int(3)
string(%d) "%s"
-- another CA

Warning: apc_fetch(): apcdb: the Redis server failed: invalid peer certificate: UnknownIssuer in Command line code on line 1
bool(false)
bool(false)
bool(false)
-- the system's CAs (no apcdb.redis_ca_file)

Warning: apc_fetch(): apcdb: the Redis server failed: invalid peer certificate: UnknownIssuer in Command line code on line 1
bool(false)
-- a CA file that does not exist

Warning: apc_fetch(): apcdb: apcdb.redis_ca_file "%s/missing.pem" cannot be read: No such file or directory (os error 2) in Command line code on line 1
bool(false)
-- a CA file with a redis:// URL (no TLS)

Warning: apc_fetch(): apcdb: apcdb.redis_ca_file "%s/ca.pem" is not usable: %srediss://%s in Command line code on line 1
bool(false)
int(0)
