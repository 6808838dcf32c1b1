--TEST--
CLI: the anonymous store is created on first use, not at startup; children forked after that share it
--SKIPIF--
<?php
if (!is_dir('/proc/self/fd')) die('skip needs /proc');
if (!function_exists('pcntl_fork')) die('skip pcntl needed');
?>
--FILE--
<?php
// The store's files are made in the temporary directory and unlinked at once; the open
// descriptors still name them, and show where (and so when) they were created.
function anon_files(): array {
    $r = [];
    foreach (scandir('/proc/self/fd') as $fd) {
        $l = @readlink("/proc/self/fd/$fd");
        if ($l !== false && str_contains($l, 'apcdb-anon-')) $r[] = $l;
    }
    return $r;
}
echo "before first use: ", count(anon_files()), " files\n";
$dir = sys_get_temp_dir() . '/apcdb-phpt-lazy-' . getmypid();
mkdir($dir, 0700);
putenv("TMPDIR=$dir");
var_dump(apc_store('n', 0));
$files = anon_files();
echo "after first use: ", count($files), " files, in the directory set before it: ",
    json_encode(count($files) > 0 && !array_filter($files, fn($f) => !str_starts_with($f, "$dir/"))), "\n";
echo "left in the directory: ", count(glob("$dir/*")), "\n";
rmdir($dir);
$pid = pcntl_fork();
if ($pid === 0) { apc_inc('n', 5); exit(0); }
pcntl_waitpid($pid, $st);
var_dump(apc_fetch('n'));
?>
--EXPECTF--
before first use: 0 files
bool(true)
after first use: %d files, in the directory set before it: true
left in the directory: 0
int(5)
