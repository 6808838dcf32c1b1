--TEST--
Checkpoints: the checkpoint thread is per process: a child forked by pcntl_fork() does not inherit it and starts its own; children exit cleanly
--SKIPIF--
<?php if (!function_exists('pcntl_fork')) die('skip pcntl needed'); ?>
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$code = '
    function threads(): int {
        $n = 0;
        foreach (glob("/proc/" . getmypid() . "/task/*/comm") as $f) $n += trim(file_get_contents($f)) === "apcdb-ckpt";
        return $n;
    }
    function through_checkpoints(int $n, string $tag): void {
        $c0 = apcdb_stats()["checkpoints"];
        for ($i = 0; apcdb_stats()["checkpoints"] < $c0 + $n && $i < 500000; $i++) {
            apc_store($tag . ($i % 300), str_repeat("v", 500));
        }
    }
    echo "parent before any checkpoint: ", threads(), " thread(s)\n";
    through_checkpoints(5, "p");
    echo "parent: ", threads(), " thread(s), flushes by writes ", apcdb_stats()["flushes_by_writes"], "\n";
    $kids = [];
    for ($k = 0; $k < 2; $k++) {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $at_fork = threads();
            through_checkpoints(5, "c$k-");
            // The parent\'s thread flushes the shared anonymous store too, and may take every
            // flush of a short run first: go on (bounded) until this child has needed its own.
            for ($j = 0; threads() === 0 && $j < 50; $j++) through_checkpoints(1, "c$k-");
            $s = apcdb_stats();
            apc_store("child$k", "threads at fork $at_fork, after " . threads() . ", flushes by writes " . $s["flushes_by_writes"]);
            exit(0);
        }
        $kids[] = $pid;
    }
    $deadline = microtime(true) + 60;
    foreach ($kids as $k => $pid) {
        while (($w = pcntl_waitpid($pid, $st, WNOHANG)) === 0 && microtime(true) < $deadline) usleep(10000);
        if ($w === 0) { posix_kill($pid, SIGKILL); pcntl_waitpid($pid, $st); echo "child $k hung\n"; continue; }
        echo "child $k: ", pcntl_wifexited($st) ? "exit " . pcntl_wexitstatus($st) : "killed by signal " . pcntl_wtermsig($st), ", ", apc_fetch("child$k"), "\n";
    }
    echo "parent after: ", threads(), " thread(s), flushes by writes ", apcdb_stats()["flushes_by_writes"], "\n";
';
$ini = ['apcdb.durability' => 'none', 'apcdb.journal_size' => '64K', 'apcdb.size' => '16M'];
echo "--- file\n";
echo apcdb_run($ini + ['apcdb.file' => apcdb_tmp('forkckpt')], $code, $rc, ['-d', 'extension=posix.so']);
echo "exit $rc\n";
echo "--- anonymous\n";
echo apcdb_run($ini + ['apcdb.file' => ''], $code, $rc);
echo "exit $rc\n";
?>
--EXPECT--
--- file
parent before any checkpoint: 0 thread(s)
parent: 1 thread(s), flushes by writes 0
child 0: exit 0, threads at fork 0, after 1, flushes by writes 0
child 1: exit 0, threads at fork 0, after 1, flushes by writes 0
parent after: 1 thread(s), flushes by writes 0
exit 0
--- anonymous
parent before any checkpoint: 0 thread(s)
parent: 1 thread(s), flushes by writes 0
child 0: exit 0, threads at fork 0, after 1, flushes by writes 0
child 1: exit 0, threads at fork 0, after 1, flushes by writes 0
parent after: 1 thread(s), flushes by writes 0
exit 0
