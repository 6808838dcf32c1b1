--TEST--
php-binding/apcdb.stub.php declares exactly the functions, classes, methods and constants the extension registers, with the same parameters
--INI--
apcdb.apcu_compat=1
--FILE--
<?php
require __DIR__ . '/helpers.inc';
// One description per function or method: parameter names, types, by-reference, optional and
// default, and the return type where the extension declares one (its functions declare none; the
// stub's are for IDEs).
$describe = <<<'PHP'
function sig(ReflectionFunctionAbstract $f, bool $returns): string {
    $ps = [];
    foreach ($f->getParameters() as $p) {
        $d = '';
        if ($p->isDefaultValueAvailable()) {
            $d = ' = ' . ($p->isDefaultValueConstant() ? $p->getDefaultValueConstantName()
                : var_export($p->getDefaultValue(), true));
        } elseif ($p->isOptional()) {
            $d = ' = ?';
        }
        $ps[] = $p->getType() . ' ' . ($p->isPassedByReference() ? '&' : '') . '$' . $p->getName() . $d;
    }
    return '(' . implode(', ', $ps) . ')' . ($returns && $f->hasReturnType() ? ': ' . $f->getReturnType() : '');
}
function describe(array $functions, array $classes, array $constants, bool $returns): array {
    $out = [];
    foreach ($functions as $name) {
        $out["function $name"] = sig(new ReflectionFunction($name), $returns);
    }
    foreach ($classes as $name) {
        $c = new ReflectionClass($name);
        $ifaces = $c->getInterfaceNames();
        sort($ifaces);
        $out["class $name"] = implode(',', $ifaces);
        foreach ($c->getMethods() as $m) {
            $out["method $name::" . $m->getName()] = sig($m, true);
        }
    }
    foreach ($constants as $name => $value) {
        $out["const $name"] = var_export($value, true);
    }
    ksort($out);
    return $out;
}
PHP;
eval($describe);
$ext = new ReflectionExtension('apcdb');
$real = describe(array_keys($ext->getFunctions()), $ext->getClassNames(), $ext->getConstants(), false);

// The stub, declared in a php without the extension.
$stub = dirname(__DIR__, 2) . '/php-binding/apcdb.stub.php';
$code = $describe . '
    $before = get_defined_constants(true)["user"] ?? [];
    $fbefore = get_defined_functions()["user"];
    require ' . var_export($stub, true) . ';
    $consts = array_diff_key(get_defined_constants(true)["user"] ?? [], $before);
    $classes = array_values(array_filter(get_declared_classes(), fn($c) => (new ReflectionClass($c))->isUserDefined()));
    echo json_encode(describe(array_diff(get_defined_functions()["user"], $fbefore), $classes, $consts, false));';
$p = proc_open([apcdb_php_binary(), '-n', '-r', $code], [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
$json = stream_get_contents($pipes[1]);
proc_close($p);
$declared = json_decode($json, true) ?? exit("the stub did not load: $json\n");
// User functions are reported in lower case: compare names case-insensitively, as PHP does.
$declared = array_change_key_case($declared);
$real = array_change_key_case($real);

echo count($real) > 40 ? "extension described\n" : "too little: " . count($real) . "\n";
foreach ($real as $k => $v) {
    if (!array_key_exists($k, $declared)) {
        echo "missing from the stub: $k$v\n";
    } elseif ($declared[$k] !== $v) {
        echo "differs: $k\n  extension: $v\n  stub:      {$declared[$k]}\n";
    }
}
foreach (array_diff_key($declared, $real) as $k => $v) {
    echo "only in the stub: $k$v\n";
}
echo "done\n";
?>
--EXPECT--
extension described
done
