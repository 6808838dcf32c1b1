--TEST--
apc_entry: a child forked inside the generator writes freely, and its own apc_entry of the key runs its generator directly
--SKIPIF--
<?php if (!function_exists('pcntl_fork')) die('skip pcntl needed'); ?>
--FILE--
<?php
$parent = getmypid();
$v = apc_entry('k', function ($key) use ($parent) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        // Still inside the parent's generator: no store lock is held, writes work.
        echo "child, nested store: "; var_dump(apc_store('other', 1));
        // The same key again: counted as nested in the generator, so it does not wait for the
        // parent (which waits for this child).
        echo "child, nested entry: "; var_dump(apc_entry('k', fn($k) => 'nested in child'));
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
// The child stored 'nested in child' first: kept (the first live value wins), and the
// parent's call still returns what its generator made.
var_dump($v, apc_fetch('k'));
// Released normally: another key's and this key's callers are not blocked.
var_dump(apc_store('after', 1), apc_fetch('after'), apc_entry('k2', fn($k) => 2));
?>
--EXPECT--
child, nested store: bool(true)
child, nested entry: string(15) "nested in child"
child's apc_entry: string(5) "child"
child exit code: 7
parent's generator sees: string(15) "nested in child"
int(1)
string(6) "parent"
string(15) "nested in child"
bool(true)
int(1)
int(2)
