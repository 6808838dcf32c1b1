--TEST--
apcdb.journal_size not set: a new store's journal follows apcdb.size as the engine sizes it (a sixteenth, 16M to 128M); set, it is used as given
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$code = '$s = apcdb_stats(); echo ini_get("apcdb.journal_size") === "" ? "(not set)" : ini_get("apcdb.journal_size"), ": ", $s["journal_size"] >> 20, "M\n";';
foreach ([['128M', null], ['1G', null], ['4G', null], ['1G', '4M'], ['1G', 'lots']] as $i => [$size, $journal]) {
    $ini = ['apcdb.file' => apcdb_tmp("journal$i"), 'apcdb.size' => $size];
    if ($journal !== null) $ini['apcdb.journal_size'] = $journal;
    echo "apcdb.size=$size, apcdb.journal_size=", apcdb_run($ini, $code);
}
// An existing store keeps the journal it was created with.
$db = apcdb_tmp('journal-kept');
apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '1G'], 'apc_store("a", 1);');
echo "reopened with apcdb.size=2G: ", apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '2G'], $code);
?>
--EXPECTF--
apcdb.size=128M, apcdb.journal_size=(not set): 16M
apcdb.size=1G, apcdb.journal_size=(not set): 64M
apcdb.size=4G, apcdb.journal_size=(not set): 128M
apcdb.size=1G, apcdb.journal_size=4M: 4M
apcdb.size=1G, apcdb.journal_size=
Warning: apcdb_stats(): apcdb: apcdb.journal_size: "lots" is not a size such as 64M or 1G; using the default (from apcdb.size) in Command line code on line 1
lots: 64M
reopened with apcdb.size=2G: (not set): 64M
