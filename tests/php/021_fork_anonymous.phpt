--TEST--
Anonymous store (apcdb.file empty): shared with children forked after its first use (CLI), as APCu's memory is
--SKIPIF--
<?php if (!function_exists('pcntl_fork')) die('skip pcntl needed'); ?>
--FILE--
<?php
apc_store('from_parent', 'p');
apc_store('n', 0);
$kids = [];
for ($i = 0; $i < 3; $i++) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        for ($j = 0; $j < 100; $j++) apc_inc('n');
        apc_store("child$i", apc_fetch('from_parent') . $i);
        exit(0);
    }
    $kids[] = $pid;
}
foreach ($kids as $pid) pcntl_waitpid($pid, $st);
var_dump(apc_fetch('n'), apc_fetch(['child0', 'child1', 'child2']));
var_dump(ini_get('apcdb.file'));
?>
--EXPECT--
int(300)
array(3) {
  ["child0"]=>
  string(2) "p0"
  ["child1"]=>
  string(2) "p1"
  ["child2"]=>
  string(2) "p2"
}
string(0) ""
