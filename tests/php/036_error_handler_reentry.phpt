--TEST--
A user error handler may call apc_* while the extension reports a problem (open failure, bad INI value)
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$handler = 'set_error_handler(function ($no, $str) {
    echo "handler: $str\n";
    echo "  in handler: ", json_encode([apc_fetch("x"), apc_store("y", 1), apc_fetch("y")]), "\n";
    return true;
});';
// The store cannot be opened: the handler runs during the one warning; its calls return false.
echo apcdb_run(['apcdb.file' => '/nonexistent-apcdb-dir/s.db'],
    $handler . 'var_dump(apc_fetch("a"), apc_store("b", 2), apc_enabled());');
// A bad INI value is reported while the store opens fine: the handler's calls work.
$db = apcdb_tmp('reentry');
echo apcdb_run(['apcdb.file' => $db, 'apcdb.sync_interval_ms' => 'bogus'],
    $handler . 'var_dump(apc_store("b", 2), apc_fetch("y"));');
?>
--EXPECTF--
handler: apc_fetch(): apcdb: cannot open the store file "/nonexistent-apcdb-dir/s.db": %s
  in handler: [false,false,false]
bool(false)
bool(false)
bool(false)
handler: apc_store(): apcdb: %s
  in handler: [false,true,1]
bool(true)
int(1)
