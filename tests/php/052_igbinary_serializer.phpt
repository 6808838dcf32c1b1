--TEST--
apcdb.serializer / apc.serializer = igbinary (issue 11 item 6): arrays and objects written in igbinary's format when that extension is loaded; each value reads back whatever the setting is now
--DESCRIPTION--
Object identity and references inside one value come back as under APCu with apc.serializer=igbinary
(confirmed with php -n -d extension=apcu.so -d extension=igbinary.so -d apc.serializer=igbinary).
--SKIPIF--
<?php
$dir = PHP_EXTENSION_DIR;
if (!is_file("$dir/igbinary.so")) die('skip igbinary.so not installed (Debian package php8.2-igbinary)');
?>
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_pool('igbinary');
$ig = ['-d', 'extension=igbinary.so'];
$show = 'ob_start(); phpinfo(INFO_MODULES); preg_match("/^Serializer => .*$/m", ob_get_clean(), $m);
         echo $m[0], "\n";';
$write = '$o = new stdClass; $o->list = [1, "x"]; $o->self = $o;
          $a = ["n" => 1]; $a["r"] = &$a["n"];
          var_dump(apc_store("obj", [$o, $o]), apc_store("ref", $a), apc_store("str", "plain"), apc_store("int", 5));
          try { apc_store("closure", fn() => 1); } catch (Exception $e) { echo get_class($e), ": ", $e->getMessage(), "\n"; }
          var_dump(apc_exists("closure"));';
$read = '$f = apc_fetch("obj"); var_dump($f[0] === $f[1], $f[0]->self === $f[0], $f[0]->list);
         $r = apc_fetch("ref"); $r["r"] = 9; var_dump($r["n"], apc_fetch("str"), apc_inc("int"));';
echo "apcdb mode, igbinary:\n", apcdb_run(['apcdb.file' => $db, 'apcdb.serializer' => 'igbinary'], $show . $write . $read, $rc, $ig);
// Read back with the setting now php: each value says how it was written.
echo "read with php:\n", apcdb_run(['apcdb.file' => $db], $show . $read, $rc, $ig);
// Without the extension the igbinary value cannot be read (the others can), and writes use php.
echo "without igbinary loaded:\n", apcdb_run(['apcdb.file' => $db],
    'var_dump(apc_fetch("obj"), apc_fetch("str")); var_dump(apc_store("x", [1]));',
    $rc, []);
echo "apcdb.serializer=igbinary without the extension:\n",
    apcdb_run(['apcdb.file' => $db, 'apcdb.serializer' => 'igbinary'], $show . 'var_dump(apc_store("y", [1]));');
$db2 = apcdb_pool('igbinary2');
echo "drop-in mode, apc.serializer=igbinary:\n",
    apcdb_run(['apcdb.file' => $db2, 'apcdb.apcu_compat' => 1, 'apc.serializer' => 'igbinary'],
              $show . 'apcu_store("k", ["a" => 1]); var_dump(apcu_fetch("k"));', $rc, $ig);
echo "drop-in mode, apcdb.serializer wins:\n",
    apcdb_run(['apcdb.file' => $db2, 'apcdb.apcu_compat' => 1, 'apc.serializer' => 'igbinary', 'apcdb.serializer' => 'php'],
              $show, $rc, $ig);
echo "unknown name:\n", apcdb_run(['apcdb.file' => $db2, 'apcdb.serializer' => 'msgpack'], $show . 'var_dump(apc_store("z", [1]));');
?>
--EXPECTF--
apcdb mode, igbinary:
Serializer => igbinary
bool(true)
bool(true)
bool(true)
bool(true)
Exception: Serialization of 'Closure' is not allowed
bool(false)
bool(true)
bool(true)
array(2) {
  [0]=>
  int(1)
  [1]=>
  string(1) "x"
}
int(9)
string(5) "plain"
int(6)
read with php:
Serializer => php
bool(true)
bool(true)
array(2) {
  [0]=>
  int(1)
  [1]=>
  string(1) "x"
}
int(9)
string(5) "plain"
int(7)
without igbinary loaded:

Warning: apc_fetch(): apcdb: cannot decode the value of this key: it was stored with apcdb.serializer=igbinary and the igbinary extension is not loaded in Command line code on line 1
bool(false)
string(5) "plain"
bool(true)
apcdb.serializer=igbinary without the extension:
Serializer => php

Warning: apc_store(): apcdb: apcdb.serializer=igbinary needs the igbinary extension, which is not loaded; using php in Command line code on line %d
bool(true)
drop-in mode, apc.serializer=igbinary:
Serializer => igbinary
array(1) {
  ["a"]=>
  int(1)
}
drop-in mode, apcdb.serializer wins:
Serializer => php
unknown name:
Serializer => php

Warning: apc_store(): apcdb: apcdb.serializer="msgpack" is not one of php, igbinary; using php in Command line code on line %d
bool(true)
