--TEST--
Durability: a php process killed with SIGKILL in the middle of an apc_inc loop loses no acknowledged increment
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_pool('sigkill');
$ini = ['apcdb.file' => $db];
echo apcdb_run($ini, 'var_dump(apc_store("counter", 0));');
for ($round = 1; $round <= 3; $round++) {
    $cmd = apcdb_cmd($ini);
    $cmd[] = '-r';
    $cmd[] = 'while (true) { $v = apc_inc("counter"); if ($v === false) { echo "FAIL\n"; exit(1); } echo $v, "\n"; }';
    $p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    $last = 0; $lines = 0; $buf = '';
    $target = 200 * $round;
    while ($lines < $target && !feof($pipes[1])) {
        $buf .= fread($pipes[1], 8192);
        while (($nl = strpos($buf, "\n")) !== false) {
            $line = substr($buf, 0, $nl);
            $buf = substr($buf, $nl + 1);
            if (!preg_match('/^[0-9]+$/', $line)) { echo "unexpected output: $line\n"; break 2; }
            $last = (int)$line;
            $lines++;
        }
    }
    // SIGKILL while the child is still incrementing.
    proc_terminate($p, 9);
    $status = proc_get_status($p);
    fclose($pipes[0]); fclose($pipes[1]);
    proc_close($p);
    $after = (int)trim(apcdb_run($ini, 'echo apc_fetch("counter");'));
    echo "round $round: ", ($after >= $last && $last > 0) ? "ok" : "LOST: last acknowledged $last, stored $after", "\n";
}
// The store is still usable after the kills.
echo apcdb_run($ini, 'var_dump(is_int(apc_inc("counter")), apc_store("after", 1), apc_fetch("after"));');
?>
--EXPECT--
bool(true)
round 1: ok
round 2: ok
round 3: ok
bool(true)
bool(true)
int(1)
