--TEST--
INI settings: values shown by phpinfo(), invalid values reported, the settings cannot be changed by ini_set()
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('ini');
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '64M', 'apcdb.durability' => 'periodic',
                'apcdb.sync_interval_ms' => 250],
    'apc_store("a", 1); apc_fetch("a"); apc_fetch("b");
     var_dump(ini_set("apcdb.file", "/tmp/other.db"), ini_get("apcdb.file") !== "/tmp/other.db");
     ob_start(); phpinfo(INFO_MODULES); $i = ob_get_clean();
     preg_match("/^apcdb support.*?(?=^Directive)/ms", $i, $m); echo $m[0];');
echo "---\n";
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '1G', 'apcdb.durability' => 'none'],
    'ob_start(); phpinfo(INFO_MODULES); $i = ob_get_clean();
     preg_match_all("/^(Size|Durability|Entries) => .*$/m", $i, $m); echo implode("\n", $m[0]), "\n";
     var_dump(apc_sma_info(true)["seg_size"]);');
echo "---\n";
echo apcdb_run(['apcdb.durability' => 'fast', 'apcdb.size' => 'lots'], 'var_dump(apc_store("a", 1), apc_store("b", 2));');
?>
--EXPECTF--
bool(false)
bool(true)
apcdb support => enabled
Version => %d.%d.%d
File => %s/apcdb-phpt-ini-%d.db
Size => 64M
Durability => periodic (250 ms)
Reset on start => no
Serializer => php
APCu compatibility => off
Entries => 1
Hits => 1
Misses => 1
Used => %d of 67108864 bytes
Recovered at open => no

---
Size => 1G
Durability => none
Entries => 1
float(%d)
---

Warning: apc_store(): apcdb: apcdb.size: "lots" is not a size such as 64M or 1G; using 128M in Command line code on line 1

Warning: apc_store(): apcdb: apcdb.durability="fast" is not one of sync, periodic, none; using sync in Command line code on line 1
bool(true)
bool(true)
