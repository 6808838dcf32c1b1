--TEST--
apc_entry: a child forked inside the generator does not own the store's lock and cannot write through it
--SKIPIF--
<?php if (!function_exists('pcntl_fork')) die('skip pcntl needed'); ?>
--FILE--
<?php
$parent = getmypid();
$v = apc_entry('k', function ($key) use ($parent) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        // Still inside the generator: a nested write is refused as in the parent.
        echo "child, nested store: "; var_dump(apc_store('other', 1));
        return 'child';
    }
    pcntl_waitpid($pid, $st);
    echo "child exit code: ", pcntl_wexitstatus($st), "\n";
    echo "parent's generator sees: "; var_dump(apc_fetch('k'), apc_fetch('other'));
    return 'parent';
});
if (getmypid() !== $parent) {
    echo "child's apc_entry: "; var_dump($v);
    exit(7);
}
var_dump($v, apc_fetch('k'));
// The lock was released normally.
var_dump(apc_store('after', 1), apc_fetch('after'));
?>
--EXPECTF--
child, nested store: 
Warning: apc_store(): apcdb: cannot write to the store from inside an apc_entry() generator %s
bool(false)

Warning: apc_entry(): apcdb: this process was forked while its parent held the store's write lock; the child does not own the lock and cannot write through it in %s on line %d
child's apc_entry: bool(false)
child exit code: 7
parent's generator sees: bool(false)
bool(false)
string(6) "parent"
string(6) "parent"
bool(true)
int(1)
