<?php
// apcdb PHP benchmark: apc_fetch/apc_store (apcdb, every durability mode, and on a Redis server
// on loopback) against APCu, dba (lmdb handler) and pdo_sqlite (WAL) as key-value stores, in one
// run.
//
//   php bench/php/bench.php [--smoke] [--rounds R] [--ms MS] [--keys K] [--dir DIR]
//                           [--ext PATH] [--fpm PATH] [--out FILE] [--only ID,ID]
//
// --only runs just the configurations with those ids (apcdb-sync, apcdb-periodic, apcdb-none,
// apcdb-redis, dba, sqlite-full, sqlite-normal) beside APCu.
//
// The script you start is the driver: it runs every configuration as separate `php -n` processes
// (durability and extensions are fixed per process by INI), 1 process and then 4 concurrent
// processes, released together once each has opened its store and written its keys; then apcdb
// and APCu again as 4 php-fpm workers of one pool (this same file answers their requests), where
// APCu's cache is shared as in production. It prints markdown tables of time per operation with
// the ratio against APCu.
//
// `-n` keeps each configuration's process clean: only the extension under test is loaded, so
// apcdb and APCu never share a process and their function/class names cannot collide.

declare(strict_types=1);

const TYPES = [
    'int' => 'int',
    'string' => '100-byte string',
    'array' => '10-element array',
    'nested' => 'nested array, 100 elements',
];

require __DIR__ . '/values.inc';

function key_of(string $type, int $i): string
{
    return "bench:$type:$i";
}

// ------------------------------------------------------------------------------------------------
// Backends, as a PHP application would use each one.

interface Backend
{
    public function store(string $k, $v): bool;
    /** @return array{0: bool, 1: mixed} found, value */
    public function fetch(string $k): array;
}

final class ApcdbBackend implements Backend
{
    public function store(string $k, $v): bool { return apc_store($k, $v); }
    public function fetch(string $k): array { $v = apc_fetch($k, $ok); return [$ok, $v]; }
}

final class ApcuBackend implements Backend
{
    public function store(string $k, $v): bool { return apcu_store($k, $v); }
    public function fetch(string $k): array { $v = apcu_fetch($k, $ok); return [$ok, $v]; }
}

/** dba stores strings only: values go through serialize(), as an application would do. */
final class DbaBackend implements Backend
{
    private $h;
    public function __construct(string $file)
    {
        // "c": create if missing, open for writing. LMDB does its own locking, so several
        // processes may hold the file open for writing at once. Each dba_replace is one LMDB
        // write transaction committed with LMDB's default (synchronous) durability. LMDB's
        // default 10 MiB map is too small for the array values: map 256 MiB (PHP 8.2's
        // map_size argument; the file only grows as used).
        $this->h = dba_open($file, 'c', 'lmdb', 0644, 256 << 20);
        if ($this->h === false) {
            throw new RuntimeException("dba_open($file, lmdb) failed");
        }
    }
    public function store(string $k, $v): bool { return dba_replace($k, serialize($v), $this->h); }
    public function fetch(string $k): array
    {
        $s = dba_fetch($k, $this->h);
        return $s === false ? [false, null] : [true, unserialize($s)];
    }
}

final class SqliteBackend implements Backend
{
    private PDO $db;
    private PDOStatement $put;
    private PDOStatement $get;
    public function __construct(string $file, string $synchronous)
    {
        $this->db = new PDO("sqlite:$file", null, null, [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_TIMEOUT => 30, // wait for other processes' write locks instead of failing
        ]);
        // Four processes creating the same new database at once: switching it to WAL and creating
        // the table can report "database is locked" without waiting for the busy timeout, so the
        // set-up (not the measured operations) is retried.
        for ($try = 0;; $try++) {
            try {
                $this->db->exec('PRAGMA journal_mode=WAL');
                $this->db->exec('CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
                break;
            } catch (PDOException $e) {
                if ($try >= 200) {
                    throw $e;
                }
                usleep(10000);
            }
        }
        $this->db->exec("PRAGMA synchronous=$synchronous");
        $this->put = $this->db->prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
        $this->get = $this->db->prepare('SELECT v FROM kv WHERE k = ?');
    }
    public function store(string $k, $v): bool
    {
        return $this->put->execute([$k, serialize($v)]);
    }
    public function fetch(string $k): array
    {
        $this->get->execute([$k]);
        $s = $this->get->fetchColumn();
        $this->get->closeCursor();
        return $s === false ? [false, null] : [true, unserialize($s)];
    }
}

// ------------------------------------------------------------------------------------------------
// Worker: one process of one configuration (a CLI process, or one request to a php-fpm worker).

function backend_of(array $o): Backend
{
    return match ($o['backend']) {
        'apcdb' => new ApcdbBackend(),
        'apcu' => new ApcuBackend(),
        'dba' => new DbaBackend($o['file']),
        'sqlite-full' => new SqliteBackend($o['file'], 'FULL'),
        'sqlite-normal' => new SqliteBackend($o['file'], 'NORMAL'),
    };
}

/** Writes every key and checks one value back; returns an error text or null. */
function setup(Backend $b, array $o): ?string
{
    $keys = (int)$o['keys'];
    // Every process writes every key first: APCu's cache lives in the memory of one process tree,
    // so each CLI process must see the keys it will fetch; for shared stores this is an overwrite.
    foreach (array_keys(TYPES) as $t) {
        for ($i = 0; $i < $keys; $i++) {
            if (!$b->store(key_of($t, $i), value_of($t, $i))) {
                return "store failed during setup ({$o['backend']})";
            }
        }
        [$ok, $v] = $b->fetch(key_of($t, 7 % $keys));
        if (!$ok || $v !== value_of($t, 7 % $keys)) {
            return "fetched value differs from the stored one ({$o['backend']}, $t)";
        }
    }
    return null;
}

/** The timed phases; returns [type][op] => ops, ns, misses. */
function timed(Backend $b, array $o): array
{
    $keys = (int)$o['keys'];
    $ms = (int)$o['ms'];
    mt_srand((int)$o['seed']);
    $out = [];
    foreach (array_keys(TYPES) as $t) {
        // Values prepared outside the timed loop: only the store call is measured.
        $vals = [];
        for ($i = 0; $i < 64; $i++) {
            $vals[] = value_of($t, $i);
        }
        $names = [];
        for ($i = 0; $i < $keys; $i++) {
            $names[] = key_of($t, $i);
        }
        foreach (['store', 'fetch'] as $op) {
            $n = 0;
            $misses = 0;
            $step = 64;
            $start = hrtime(true);
            $deadline = $start + $ms * 1000000;
            $prev = $start;
            do {
                // 64 ops between clock reads keeps the clock out of fast loops; a backend slow
                // enough for that to overshoot the phase (one fsync per store) reads it every op.
                for ($j = 0; $j < $step; $j++) {
                    $k = $names[mt_rand(0, $keys - 1)];
                    if ($op === 'store') {
                        $b->store($k, $vals[$j & 63]);
                    } else {
                        [$ok] = $b->fetch($k);
                        if (!$ok) {
                            $misses++;
                        }
                    }
                }
                $n += $step;
                $now = hrtime(true);
                if ($now - $prev > 2000000) {
                    $step = 1;
                }
                $prev = $now;
            } while ($now < $deadline);
            $elapsed = $now - $start;
            $out[$t][$op] = ['ops' => $n, 'ns' => $elapsed, 'misses' => $misses];
        }
    }
    return $out;
}

/** A CLI worker: set up, say "ready", wait for the driver's line on stdin, run, print JSON. */
function worker(array $o): void
{
    $b = backend_of($o);
    if (($err = setup($b, $o)) !== null) {
        fwrite(STDERR, "$err\n");
        exit(1);
    }
    echo "ready\n";
    fgets(STDIN); // released by the driver together with the other processes
    echo json_encode(timed($b, $o)), "\n";
}

/**
 * One php-fpm request: as a CLI worker, but the handshake goes through files in the run's
 * directory (a request has no stdin to wait on): it creates ready.<n>, waits for go, then answers
 * with the JSON results and the worker's pid (the driver checks that 4 different workers ran).
 */
function fpm_worker(array $o): void
{
    header('Content-Type: application/json');
    $b = backend_of($o);
    if (($err = setup($b, $o)) !== null) {
        echo json_encode(['error' => $err]);
        return;
    }
    touch("{$o['sync']}/ready.{$o['n']}");
    $until = microtime(true) + 60;
    while (!file_exists("{$o['sync']}/go")) {
        if (microtime(true) > $until) {
            echo json_encode(['error' => 'never released']);
            return;
        }
        usleep(1000);
        clearstatcache();
    }
    echo json_encode(['pid' => getmypid(), 'results' => timed($b, $o)]);
}

// ------------------------------------------------------------------------------------------------
// Driver

function arg_opts(array $argv): array
{
    $o = [
        'smoke' => false, 'rounds' => 3, 'ms' => 300, 'keys' => 1000, 'out' => null, 'only' => null,
        'dir' => '/var/tmp/apcdb-php-bench-' . getmypid(),
        'ext' => getenv('APCDB_EXT') ?: dirname(__DIR__, 2) . '/target/release/libapcdb.so',
        'fpm' => '/usr/sbin/php-fpm' . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION,
    ];
    for ($i = 1; $i < count($argv); $i++) {
        $a = $argv[$i];
        if ($a === '--smoke') {
            $o['smoke'] = true;
        } elseif (str_starts_with($a, '--') && $i + 1 < count($argv)) {
            $o[substr($a, 2)] = $argv[++$i];
        } else {
            fwrite(STDERR, "unknown argument $a\n");
            exit(2);
        }
    }
    if ($o['smoke']) {
        // Keeps the script running in CI; the numbers mean nothing.
        $o['rounds'] = 1;
        $o['ms'] = 20;
        $o['keys'] = 100;
    }
    return $o;
}

/** The configurations, each with the `php` flags that set it up. */
function configs(array $o): array
{
    $dir = $o['dir'];
    $c = [];
    foreach (['sync', 'periodic', 'none'] as $mode) {
        $c[] = [
            'name' => "apc_* — apcdb, durability=$mode",
            'id' => "apcdb-$mode",
            'backend' => 'apcdb',
            'flags' => ['-d', 'extension=' . $o['ext'], '-d', "apcdb.file=$dir/apcdb-$mode.db",
                '-d', "apcdb.durability=$mode", '-d', 'apcdb.size=64M'],
            'needs' => "apcdb extension at {$o['ext']} (build it: cargo build --release -p apcdb-php, or pass --ext PATH)",
            'probe' => 'function_exists("apc_fetch")',
            'fpm' => true,
        ];
    }
    if (!empty($o['redis_port'])) {
        // The same functions on a Redis server on loopback (no persistence: a cache's settings),
        // one connection per process kept across calls, as in a php-fpm worker.
        $c[] = [
            'name' => 'apc_* — apcdb on Redis (loopback)',
            'id' => 'apcdb-redis',
            'backend' => 'apcdb',
            'flags' => ['-d', 'extension=' . $o['ext'], '-d', "apcdb.file=redis://127.0.0.1:{$o['redis_port']}/0"],
            'needs' => "apcdb extension at {$o['ext']}",
            'probe' => 'function_exists("apc_fetch") && apc_store("probe", 1)',
            'fpm' => true,
        ];
    }
    $c[] = [
        'name' => 'apcu_* — APCu',
        'id' => 'apcu',
        'backend' => 'apcu',
        'flags' => ['-d', 'extension=apcu.so', '-d', 'apc.enable_cli=1'],
        'needs' => 'APCu (Debian: apt-get install php8.2-apcu)',
        'probe' => 'function_exists("apcu_fetch") && apcu_enabled()',
        'fpm' => true,
    ];
    $c[] = [
        'name' => 'dba, lmdb handler (synchronous commits)',
        'id' => 'dba',
        'backend' => 'dba',
        'file' => "$dir/dba.lmdb",
        'flags' => ['-d', 'extension=dba.so'],
        'needs' => 'dba with the lmdb handler (Debian: apt-get install php8.2-dba)',
        'probe' => 'function_exists("dba_handlers") && in_array("lmdb", dba_handlers())',
    ];
    foreach (['FULL', 'NORMAL'] as $sync) {
        $c[] = [
            'name' => "pdo_sqlite, WAL, synchronous=$sync",
            'id' => 'sqlite-' . strtolower($sync),
            'backend' => 'sqlite-' . strtolower($sync),
            'file' => "$dir/kv-" . strtolower($sync) . '.sqlite',
            'flags' => ['-d', 'extension=pdo.so', '-d', 'extension=pdo_sqlite.so'],
            'needs' => 'pdo_sqlite (Debian: apt-get install php8.2-sqlite3)',
            'probe' => 'extension_loaded("pdo_sqlite")',
        ];
    }
    return $c;
}

function php_cmd(array $flags, array $args): array
{
    // Errors to stderr: a worker's stdout carries only its protocol lines.
    return array_merge([PHP_BINARY, '-n', '-d', 'display_errors=stderr'], $flags, $args);
}

/** Whether a configuration's extension loads; returns null if so, else the reason. */
function probe(array $cfg): ?string
{
    $p = proc_open(php_cmd($cfg['flags'], ['-r', "echo ({$cfg['probe']}) ? 'yes' : 'no';"]),
        [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    $out = stream_get_contents($pipes[1]);
    $err = trim(stream_get_contents($pipes[2]));
    proc_close($p);
    if (trim($out) === 'yes' && $err === '') {
        return null;
    }
    return "needs {$cfg['needs']}" . ($err !== '' ? " — php said: " . strtok($err, "\n") : '');
}

/** Run $procs workers of one configuration together; returns their decoded results. */
function run_procs(array $cfg, array $o, int $procs, int $round): array
{
    $kids = [];
    for ($i = 0; $i < $procs; $i++) {
        $args = [__FILE__, '--worker', '1', '--backend', $cfg['backend'], '--file', $cfg['file'] ?? '',
            '--keys', (string)$o['keys'], '--ms', (string)$o['ms'], '--seed', (string)($round * 100 + $i + 1)];
        $p = proc_open(php_cmd($cfg['flags'], $args), [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => STDERR], $pipes);
        if (!is_resource($p)) {
            throw new RuntimeException('cannot start php');
        }
        $kids[] = [$p, $pipes];
    }
    foreach ($kids as [$p, $pipes]) {
        $l = fgets($pipes[1]);
        if (trim((string)$l) !== 'ready') {
            throw new RuntimeException("{$cfg['id']}: worker did not start (said " . var_export($l, true) . ')');
        }
    }
    foreach ($kids as [$p, $pipes]) {
        fwrite($pipes[0], "go\n");
        fflush($pipes[0]);
    }
    $res = [];
    foreach ($kids as [$p, $pipes]) {
        $l = stream_get_contents($pipes[1]);
        $code = proc_close($p);
        $r = json_decode(trim((string)$l), true);
        if ($code !== 0 || !is_array($r)) {
            throw new RuntimeException("{$cfg['id']}: worker failed (exit $code)");
        }
        $res[] = $r;
    }
    return $res;
}

/** Sends one FastCGI GET request for $script?$query to a unix socket; returns the connection. */
function fcgi_send(string $socket, string $script, string $query)
{
    $s = stream_socket_client("unix://$socket", $errno, $errstr, 5);
    if (!$s) {
        throw new RuntimeException("cannot connect to php-fpm at $socket: $errstr");
    }
    // Records: version 1, type, request id 1, content length, padding to 8 bytes.
    $record = function (int $type, string $body): string {
        $pad = -strlen($body) & 7;
        return pack('CCnnCx', 1, $type, 1, strlen($body), $pad) . $body . str_repeat("\0", $pad);
    };
    $len = fn(string $x) => strlen($x) < 128 ? chr(strlen($x)) : pack('N', strlen($x) | 0x80000000);
    $params = '';
    foreach ([
        'SCRIPT_FILENAME' => $script, 'SCRIPT_NAME' => '/' . basename($script), 'QUERY_STRING' => $query,
        'REQUEST_METHOD' => 'GET', 'SERVER_PROTOCOL' => 'HTTP/1.1', 'GATEWAY_INTERFACE' => 'CGI/1.1',
        'REQUEST_URI' => '/' . basename($script) . "?$query", 'SERVER_NAME' => 'localhost',
        'REMOTE_ADDR' => '127.0.0.1', 'CONTENT_LENGTH' => '0',
    ] as $k => $v) {
        $params .= $len($k) . $len($v) . $k . $v;
    }
    // BEGIN_REQUEST (responder role, close the connection after), PARAMS, empty PARAMS, empty STDIN.
    fwrite($s, $record(1, pack('nCx5', 1, 0)) . $record(4, $params) . $record(4, '') . $record(5, ''));
    return $s;
}

/** The body of the answer on a connection made by fcgi_send(); closes it. */
function fcgi_read($s, int $timeout): string
{
    stream_set_timeout($s, $timeout);
    $out = '';
    while (strlen($h = (string)fread($s, 8)) === 8) {
        $r = unpack('Cv/Ctype/nid/nlen/Cpad', $h);
        $body = $r['len'] + $r['pad'] > 0 ? (string)stream_get_contents($s, $r['len'] + $r['pad']) : '';
        if ($r['type'] === 6) { // STDOUT
            $out .= substr($body, 0, $r['len']);
        } elseif ($r['type'] === 3) { // END_REQUEST
            break;
        }
    }
    fclose($s);
    $at = strpos($out, "\r\n\r\n");
    return $at === false ? $out : substr($out, $at + 4);
}

/**
 * Run one configuration as $procs php-fpm workers of one static pool (so APCu's cache is shared
 * by them, as in production): one request per worker, all held until each has written its keys.
 */
function run_fpm(array $cfg, array $o, int $procs, int $round): array
{
    $dir = $o['dir'] . '/fpm';
    @mkdir($dir, 0777, true);
    chmod($dir, 0777); // the pool's workers may run as another user
    $user = function_exists('posix_geteuid') && posix_geteuid() === 0 ? "user = root\ngroup = root\n" : '';
    file_put_contents("$dir/fpm.conf", "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n\n"
        . "[bench]\n{$user}listen = $dir/fpm.sock\npm = static\npm.max_children = $procs\n"
        . "php_admin_value[max_execution_time] = 0\n");
    $cmd = array_merge([$o['fpm'], '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'display_errors=stderr'], $cfg['flags']);
    $fpm = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'],
        2 => ['file', "$dir/fpm.out", 'a']], $pipes);
    if (!is_resource($fpm)) {
        throw new RuntimeException('cannot start php-fpm');
    }
    try {
        for ($i = 0; $i < 200 && !file_exists("$dir/fpm.sock"); $i++) {
            usleep(25000);
        }
        $conns = [];
        for ($i = 0; $i < $procs; $i++) {
            $q = http_build_query(['backend' => $cfg['backend'], 'file' => $cfg['file'] ?? '', 'keys' => $o['keys'],
                'ms' => $o['ms'], 'seed' => $round * 100 + $i + 1, 'sync' => $dir, 'n' => $i]);
            $conns[] = fcgi_send("$dir/fpm.sock", __FILE__, $q);
        }
        $until = microtime(true) + 60;
        for ($i = 0; $i < $procs; $i++) {
            while (!file_exists("$dir/ready.$i")) {
                if (microtime(true) > $until) {
                    throw new RuntimeException("{$cfg['id']}: php-fpm worker $i did not get ready ("
                        . trim((string)@file_get_contents("$dir/fpm.out")) . ')');
                }
                usleep(2000);
                clearstatcache();
            }
        }
        touch("$dir/go");
        $res = [];
        $pids = [];
        foreach ($conns as $c) {
            $body = fcgi_read($c, 120);
            $r = json_decode($body, true);
            if (!is_array($r) || !isset($r['results'])) {
                throw new RuntimeException("{$cfg['id']}: php-fpm worker failed: " . substr($body, 0, 300));
            }
            $pids[$r['pid']] = true;
            $res[] = $r['results'];
        }
        if (count($pids) !== $procs) {
            throw new RuntimeException("{$cfg['id']}: the requests ran on " . count($pids) . " php-fpm workers, not $procs");
        }
        return $res;
    } finally {
        proc_terminate($fpm, 15);
        proc_close($fpm);
        rm_tree($dir);
    }
}

function median(array $v): ?float
{
    if (!$v) {
        return null;
    }
    sort($v);
    $n = count($v);
    return $n % 2 ? $v[intdiv($n, 2)] : ($v[$n / 2 - 1] + $v[$n / 2]) / 2;
}

function fmt_ns(?float $ns): string
{
    if ($ns === null) {
        return 'n/a';
    }
    if ($ns < 1000) {
        return sprintf('%.0f ns', $ns);
    }
    if ($ns < 1e6) {
        return sprintf('%.2f µs', $ns / 1e3);
    }
    return sprintf('%.2f ms', $ns / 1e6);
}

function rm_tree(string $d): void
{
    if (!is_dir($d)) {
        return;
    }
    foreach (scandir($d) as $f) {
        if ($f !== '.' && $f !== '..') {
            is_dir("$d/$f") ? rm_tree("$d/$f") : unlink("$d/$f");
        }
    }
    rmdir($d);
}

/** Starts a redis-server on a free loopback port for the Redis rows; its port, or null. */
function start_redis(array $o): ?int
{
    $bin = '/usr/bin/redis-server';
    if (!is_executable($bin)) {
        return null;
    }
    $s = stream_socket_server('tcp://127.0.0.1:0');
    $port = (int)substr(strrchr(stream_socket_get_name($s, false), ':'), 1);
    fclose($s);
    @mkdir("{$o['dir']}-redis", 0700, true);
    $p = proc_open([$bin, '--port', (string)$port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--dir', "{$o['dir']}-redis", '--daemonize', 'no'], [0 => ['file', '/dev/null', 'r'],
        1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
    register_shutdown_function(function () use ($p, $o) {
        proc_terminate($p, 9);
        proc_close($p);
        rm_tree("{$o['dir']}-redis");
    });
    for ($i = 0; $i < 200; $i++) {
        if ($c = @stream_socket_client("tcp://127.0.0.1:$port")) {
            fclose($c);
            return $port;
        }
        usleep(25000);
    }
    return null;
}

function driver(array $o): void
{
    $t0 = microtime(true);
    @mkdir($o['dir'], 0700, true);
    $cfgs = [];
    $skipped = [];
    $o['redis_port'] = start_redis($o);
    if ($o['redis_port'] === null) {
        $skipped[] = 'apc_* — apcdb on Redis: skipped, needs /usr/bin/redis-server (Debian: apt-get install redis-server)';
    }
    // --only id,id: just those rows (APCu's is kept for the ratios).
    $only = $o['only'] !== null ? array_merge(explode(',', $o['only']), ['apcu']) : null;
    foreach (configs($o) as $cfg) {
        if ($only !== null && !in_array($cfg['id'], $only, true)) {
            continue;
        }
        $why = probe($cfg);
        if ($why === null) {
            $cfgs[] = $cfg;
        } else {
            $skipped[] = "{$cfg['name']}: skipped, $why";
            fwrite(STDERR, "SKIP {$cfg['name']}: $why\n");
        }
    }
    // The process settings: [label, processes, under php-fpm]. The php-fpm rows run only the
    // stores whose sharing differs there (APCu shares its cache between a pool's workers).
    $settings = ['1' => ['1 process', 1, false], '4' => ['4 concurrent CLI processes', 4, false]];
    if (is_executable($o['fpm'])) {
        $settings['fpm4'] = ['4 php-fpm workers of one pool', 4, true];
    } else {
        $skipped[] = "4 php-fpm workers of one pool: skipped, needs php-fpm at {$o['fpm']} (pass --fpm PATH)";
    }
    // samples[setting][id][type][op] = list over rounds of [ns per op per process, total ops/s]
    $samples = [];
    $failures = [];
    for ($round = 0; $round < (int)$o['rounds']; $round++) {
        foreach ($settings as $set => [$label, $procs, $fpm]) {
            foreach ($cfgs as $cfg) {
                if ($fpm && empty($cfg['fpm'])) {
                    continue;
                }
                fwrite(STDERR, "round " . ($round + 1) . ": {$cfg['id']}, $label\n");
                foreach (glob($o['dir'] . '/*') as $f) {
                    is_dir($f) ? rm_tree($f) : unlink($f);
                }
                try {
                    $res = $fpm ? run_fpm($cfg, $o, $procs, $round) : run_procs($cfg, $o, $procs, $round);
                } catch (Throwable $e) {
                    $failures[] = $e->getMessage();
                    fwrite(STDERR, "FAILED {$e->getMessage()}\n");
                    continue;
                }
                foreach (array_keys(TYPES) as $t) {
                    foreach (['store', 'fetch'] as $op) {
                        $per = [];
                        $rate = 0.0;
                        foreach ($res as $r) {
                            $x = $r[$t][$op];
                            $per[] = $x['ns'] / $x['ops'];
                            $rate += $x['ops'] / ($x['ns'] / 1e9);
                            if ($x['misses'] > 0) {
                                $failures[] = "{$cfg['id']} $t: {$x['misses']} fetch misses";
                            }
                        }
                        $samples[$set][$cfg['id']][$t][$op][] = [array_sum($per) / count($per), $rate];
                    }
                }
            }
        }
    }
    rm_tree($o['dir']);

    $m = fn(int|string $set, string $id, string $t, string $op, int $i) =>
        median(array_column($samples[$set][$id][$t][$op] ?? [], $i));
    $md = "## PHP benchmark results\n\n";
    $md .= sprintf("- %s; %d keys per value type; %d ms per timed phase; median of %d round(s)%s\n",
        'PHP ' . PHP_VERSION, $o['keys'], $o['ms'], $o['rounds'],
        $o['smoke'] ? ' — **smoke run: the numbers mean nothing**' : '');
    $md .= sprintf("- whole run took %.0f s\n", microtime(true) - $t0);
    $md .= "- time/op is wall time per call inside one process (4 processes: mean of the 4); "
        . "\"÷ APCu\" is that time divided by APCu's for the same value and process count (below 1 = faster than APCu).\n";
    $md .= "- APCu's cache lives in the memory of one process tree: 4 separate `php` CLI processes each have their own, "
        . "so APCu's CLI 4-process figures involve no sharing, while the other stores share one file. "
        . "The php-fpm rows run 4 workers of one static pool, one request each (APCu shared by the 4, as in production); "
        . "only apcdb and APCu are run there.\n\n";
    foreach ($skipped as $s) {
        $md .= "- **$s**\n";
    }
    if ($skipped) {
        $md .= "\n";
    }
    foreach ($settings as $set => [$label, $procs, $fpm]) {
        $md .= "### $label\n\n";
        $md .= "| store | value | fetch time/op | fetch ÷ APCu | store time/op | store ÷ APCu | fetches/s (all processes) | stores/s (all processes) |\n";
        $md .= "|---|---|---:|---:|---:|---:|---:|---:|\n";
        foreach ($cfgs as $cfg) {
            if ($fpm && empty($cfg['fpm'])) {
                continue;
            }
            foreach (TYPES as $t => $tname) {
                $cells = [];
                foreach (['fetch', 'store'] as $op) {
                    $v = $m($set, $cfg['id'], $t, $op, 0);
                    $a = $m($set, 'apcu', $t, $op, 0);
                    $cells[] = fmt_ns($v);
                    $cells[] = ($v !== null && $a) ? sprintf('%.2f', $v / $a) : 'n/a';
                }
                foreach (['fetch', 'store'] as $op) {
                    $r = $m($set, $cfg['id'], $t, $op, 1);
                    $cells[] = $r === null ? 'n/a' : number_format($r);
                }
                $md .= "| {$cfg['name']} | $tname | " . implode(' | ', $cells) . " |\n";
            }
        }
        $md .= "\n";
    }
    // Targets: apc_fetch within 1.2x of apcu_fetch; apc_store (none) within 1.5x of apcu_store.
    $md .= "### Targets (PHP side)\n\nRatio of time per call, apcdb ÷ APCu, for each value type.\n\n";
    $md .= "| target | processes | " . implode(' | ', TYPES) . " | verdict |\n|---|---|"
        . str_repeat('---:|', count(TYPES)) . "---|\n";
    $targets = [
        ['fetch', 'apcdb-none', 1.2, 'apc_fetch ≤ 1.2× apcu_fetch (durability=none)'],
        ['fetch', 'apcdb-sync', 1.2, 'apc_fetch ≤ 1.2× apcu_fetch (durability=sync)'],
        ['store', 'apcdb-none', 1.5, 'apc_store (none) ≤ 1.5× apcu_store'],
    ];
    foreach ($targets as [$op, $id, $lim, $what]) {
        foreach ($settings as $set => [$label]) {
            $cells = [];
            $met = 0;
            $measured = 0;
            foreach (array_keys(TYPES) as $t) {
                $v = $m($set, $id, $t, $op, 0);
                $a = $m($set, 'apcu', $t, $op, 0);
                if ($v === null || !$a) {
                    $cells[] = 'n/a';
                    continue;
                }
                $measured++;
                $met += ($v / $a <= $lim) ? 1 : 0;
                $cells[] = sprintf('%.2f×', $v / $a);
            }
            $verdict = $measured === 0 ? 'not measured'
                : ($met === $measured ? 'met' : "**not met** (met for $met of $measured values)");
            $md .= "| $what | $label | " . implode(' | ', $cells) . " | $verdict |\n";
        }
    }
    $md .= "\n";
    if ($failures) {
        $md .= "### Failures\n\n";
        foreach (array_unique($failures) as $f) {
            $md .= "- $f\n";
        }
        $md .= "\n";
    }
    echo $md;
    if ($o['out']) {
        file_put_contents($o['out'], $md);
    }
    // A failed worker or a missing value is a broken benchmark; a store that is not installed is
    // only skipped, and slow numbers never fail the run.
    if ($failures) {
        exit(1);
    }
}

if (PHP_SAPI === 'fpm-fcgi') {
    fpm_worker($_GET);
    return;
}
$o = arg_opts($argv);
if (isset($o['worker'])) {
    worker($o);
} else {
    driver($o);
}
