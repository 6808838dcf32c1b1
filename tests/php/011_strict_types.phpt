--TEST--
Errors: strict_types=1 in the caller applies to the int/string/bool parameters
--FILE--
<?php
declare(strict_types=1);
try { apc_store('k', 1, '10'); } catch (TypeError $e) { echo $e->getMessage(), "\n"; }
try { apc_inc(5); } catch (TypeError $e) { echo $e->getMessage(), "\n"; }
try { apc_sma_info(1); } catch (TypeError $e) { echo $e->getMessage(), "\n"; }
var_dump(apc_store('k', 1, 10), apc_inc('k', 2));
?>
--EXPECT--
apc_store(): Argument #3 ($ttl) must be of type int, string given
apc_inc(): Argument #1 ($key) must be of type string, int given
apc_sma_info(): Argument #1 ($limited) must be of type bool, int given
bool(true)
int(3)
