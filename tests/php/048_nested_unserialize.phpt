--TEST--
Nested unserialize (issue 11 item 1): a fetch (or store) made while an outer unserialize() (or serialize()) runs gets a back-reference table of its own
--DESCRIPTION--
Expected output confirmed against APCu 5.1 (php -n -d extension=apcu.so -d apc.enable_cli=1): same
output. Before the fix the fetch inside Serializable::unserialize() shared the outer table and
returned the outer document's values in place of its own.
--INI--
apcdb.apcu_compat=1
error_reporting=E_ALL & ~E_DEPRECATED
--FILE--
<?php
// Fetches made while an outer unserialize() is running, from each kind of callback.
class ViaSerializable implements Serializable {
    public $got;
    function serialize(): string { return 'x'; }
    function unserialize($data): void { $this->got = apcu_fetch('session'); }
}
class ViaUnserialize {
    public $got;
    function __serialize(): array { return []; }
    function __unserialize(array $data): void { $this->got = apcu_fetch('session'); }
}
class ViaWakeup {
    public $got;
    function __sleep() { return []; }
    function __wakeup() { $this->got = apcu_fetch('session'); }
}
// Stores made while an outer serialize() is running.
class StoresWhileSerialized implements Serializable {
    function serialize(): string {
        $s = ['user' => ['enabled' => true], 'authenticated' => false];
        $s['user']['authenticated'] = &$s['authenticated'];
        apcu_store('stored_inside', $s);
        return 'y';
    }
    function unserialize($data): void {}
}
$s = ['user' => ['enabled' => true], 'authenticated' => false];
$s['user']['authenticated'] = &$s['authenticated'];
apcu_store('session', $s);

function show(string $label, $v): void {
    echo "$label: ", json_encode($v), "\n";
    // The reference must still link the two fields.
    $v['authenticated'] = 'linked';
    echo "  after writing authenticated: ", json_encode($v['user']['authenticated']), "\n";
}
foreach ([ViaSerializable::class, ViaUnserialize::class, ViaWakeup::class] as $cls) {
    // Outer documents with references and objects of their own, so that back-reference numbers
    // of the outer table and of the fetched value overlap.
    $shared = ['a' => 1];
    $outer = [new $cls, true, false, &$shared, &$shared, new stdClass];
    $back = unserialize(serialize($outer));
    show($cls, $back[0]->got);
    var_dump($back[1], $back[2], $back[3] === $back[4]);
}
$outer = [new StoresWhileSerialized, ['k' => 1], 'x'];
$outer[] = &$outer[1];
$str = serialize($outer);
show('stored inside serialize()', apcu_fetch('stored_inside'));
// The outer serialize() was not disturbed by the store inside it.
$back = unserialize($str);
$back[3]['k'] = 2;
var_dump($back[1]['k']);
// A value whose own Serializable class calls serialize()/unserialize() on its data: as under
// APCu, that inner call has a table of its own, so the data comes back equal but not identical.
class Box implements Serializable {
    public $d;
    function __construct($d = null) { $this->d = $d; }
    function serialize(): string { return serialize($this->d); }
    function unserialize($s): void { $this->d = unserialize($s); }
}
$o = new stdClass; $o->n = 5;
apcu_store('boxed', [$o, new Box($o)]);
$f = apcu_fetch('boxed');
var_dump($f[1]->d == $f[0], $f[1]->d->n);

?>
--EXPECT--
ViaSerializable: {"user":{"enabled":true,"authenticated":false},"authenticated":false}
  after writing authenticated: "linked"
bool(true)
bool(false)
bool(true)
ViaUnserialize: {"user":{"enabled":true,"authenticated":false},"authenticated":false}
  after writing authenticated: "linked"
bool(true)
bool(false)
bool(true)
ViaWakeup: {"user":{"enabled":true,"authenticated":false},"authenticated":false}
  after writing authenticated: "linked"
bool(true)
bool(false)
bool(true)
stored inside serialize(): {"user":{"enabled":true,"authenticated":false},"authenticated":false}
  after writing authenticated: "linked"
int(2)
bool(true)
int(5)
