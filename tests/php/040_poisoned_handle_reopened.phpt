--TEST--
A handle poisoned by a failed flush (a real write-back error) is dropped and the store reopened on the next call
--SKIPIF--
<?php
if (!function_exists('posix_geteuid') || posix_geteuid() !== 0) die('skip needs root (mounts a loop device)');
foreach (['/usr/sbin/mkfs.ext4', '/usr/sbin/losetup', '/usr/bin/mount', '/usr/bin/umount'] as $t) {
    if (!is_executable($t)) die("skip $t is not installed");
}
$d = sys_get_temp_dir() . '/apcdb-phpt-poison-probe-' . getmypid();
@mkdir($d, 0700);
exec('mount -t tmpfs -o size=1m tmpfs ' . escapeshellarg($d) . ' 2>&1', $o, $rc);
if ($rc === 0) exec('umount ' . escapeshellarg($d));
@rmdir($d);
if ($rc !== 0) die('skip cannot mount a tmpfs here');
exec('losetup -f 2>&1', $o2, $rc2);
if ($rc2 !== 0) die('skip no free loop device');
?>
--EXTENSIONS--
posix
--FILE--
<?php
require __DIR__ . '/helpers.inc';
// An ext4 image on a loop device, backed by a sparse file on a small tmpfs. Blocks the image never
// wrote need tmpfs space when first written back; once the tmpfs is full, the write-back of the
// store's new data pages fails (EIO/ENOSPC from msync), which poisons the handle, as a failing disk
// would. Freeing the space makes the device writable again.
$base = sys_get_temp_dir() . '/apcdb-phpt-poison-' . getmypid();
$sh = fn(string $c) => exec($c . ' 2>&1', $out, $rc) !== false && $rc === 0 ? true : (print("failed: $c: " . implode(' ', $out) . "\n")) && false;
mkdir("$base/back", 0700, true);
mkdir("$base/mnt", 0700);
$loop = null;
register_shutdown_function(function () use ($base, &$loop) {
    exec('umount ' . escapeshellarg("$base/mnt") . ' 2>&1');
    if ($loop) exec('losetup -d ' . escapeshellarg($loop) . ' 2>&1');
    exec('umount ' . escapeshellarg("$base/back") . ' 2>&1');
    exec('rm -rf ' . escapeshellarg($base));
});
$sh('mount -t tmpfs -o size=48m tmpfs ' . escapeshellarg("$base/back"));
$sh('truncate -s 200M ' . escapeshellarg("$base/back/img"));
$sh('mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 ' . escapeshellarg("$base/back/img"));
$loop = trim((string) exec('losetup -f --show ' . escapeshellarg("$base/back/img")));
$sh('mount -o errors=continue ' . escapeshellarg($loop) . ' ' . escapeshellarg("$base/mnt"));
mkdir("$base/mnt/d", 0700);
echo apcdb_run(['apcdb.file' => "$base/mnt/d/s.db", 'apcdb.durability' => 'none'], '
$back = ' . var_export("$base/back", true) . ';
var_dump(apc_store("small", 1));
// Fill the tmpfs, leaving 1 MiB for the file system\'s own metadata.
$f = fopen("$back/filler", "w");
$left = (int) disk_free_space($back) - (1 << 20);
$chunk = str_repeat("\0", 1 << 16);
for (; $left > 0; $left -= strlen($chunk)) fwrite($f, $left >= strlen($chunk) ? $chunk : substr($chunk, 0, $left));
fclose($f);
$v = str_repeat("x", 3800000);
for ($i = 0; $i < 8 && apc_store("big$i", $v); $i++);
echo "a write failed: ", json_encode($i < 8), "\n";
unlink("$back/filler");
// The msync fails in the checkpoint thread (or in a write that found its journal half full): the
// next write reports it, and the call after that reopens the store (the new handle recovers from
// the journal) instead of refusing.
var_dump(apc_store("after", 2), apc_fetch("after"), apc_fetch("small"), strlen(apc_fetch("big0")));
');
?>
--EXPECTF--
bool(true)
%AWarning: apc_store(): apcdb: %s failed%s
a write failed: true
bool(true)
int(2)
int(1)
int(3800000)
