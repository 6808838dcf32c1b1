--TEST--
apcdb.size: a process started with a larger value raises the limit for a process that already has the store open (no restart)
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('grow2');
$cmd = apcdb_cmd(['apcdb.file' => $db, 'apcdb.size' => '4M']);
$cmd[] = '-r';
$cmd[] = '
    $v = str_repeat("y", 100000);
    for ($i = 0; $i < 1000; $i++) { if (!@apc_store("a$i", $v)) break; }
    echo "full at 4M: ", apcdb_stats()["max_size"] === 4 << 20 ? "yes" : "no", "\n";
    fgets(STDIN);
    $s = apcdb_stats();
    echo "now ", $s["max_size"] >> 20, "M\n";
    for ($j = $i; $j < 1000; $j++) { if (!@apc_store("a$j", $v)) break; }
    echo $j > $i ? "stored more\n" : "stored nothing more\n";
    echo apcdb_stats()["file_size"] > 4 << 20 ? "file over 4M\n" : "file within 4M\n";
';
$p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
echo fgets($pipes[1]);
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '12M'], 'echo apc_fetch("a0") === str_repeat("y", 100000) ? "other process sees a0\n" : "a0 missing\n";');
fwrite($pipes[0], "go\n");
fclose($pipes[0]);
echo stream_get_contents($pipes[1]);
fclose($pipes[1]);
var_dump(proc_close($p));
?>
--EXPECT--
full at 4M: yes
other process sees a0
now 12M
stored more
file over 4M
int(0)
