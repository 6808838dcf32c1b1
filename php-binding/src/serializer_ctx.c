/*
 * PHP's serializer lock, taken around one apcdb encode or decode.
 *
 * PHP's serialize()/unserialize() share one back-reference table with an outer call that is still
 * running (so that Serializable::unserialize() can call unserialize() on its own data). A value
 * fetched from the cache is a document by itself: decoding it inside someone else's unserialize()
 * must use a table of its own, or its references point into the outer value. While
 * BG(serialize_lock) is non-zero every (un)serialize call starts its own table; APCu's serializer
 * takes it the same way. The lock lives in the basic extension's globals, whose layout depends on
 * the PHP build, hence this small C file compiled against PHP's headers.
 */
#include "php.h"
#include "ext/standard/basic_functions.h"

/* Takes the lock; returns the value to give back to apcdb_serializer_unlock(). */
unsigned apcdb_serializer_lock(void)
{
	unsigned saved = BG(serialize_lock);
	BG(serialize_lock) = saved + 1;
	return saved;
}

/* Puts the lock back as apcdb_serializer_lock() found it. */
void apcdb_serializer_unlock(unsigned saved)
{
	BG(serialize_lock) = saved;
}

/*
 * PHP's own serializer called directly, as serialize()/unserialize() would run it, without looking
 * the functions up by name and going through a userland call for every array or object. Both run
 * under the lock above (taken by the Rust caller), so each gets a back-reference table of its own.
 */
#include "ext/standard/php_var.h"
#include "zend_smart_str.h"

/*
 * Serializes *value into a new string that starts with the byte `tag` (apcdb's value tag), so
 * that the stored bytes need no second copy. Returns NULL, with nothing allocated, when the value
 * could not be serialized (an exception is pending: a Closure, a __sleep that threw).
 */
zend_string *apcdb_serialize(zval *value, unsigned char tag)
{
	smart_str out = {0};
	php_serialize_data_t table;

	smart_str_appendc(&out, (char)tag);
	PHP_VAR_SERIALIZE_INIT(table);
	php_var_serialize(&out, value, &table);
	PHP_VAR_SERIALIZE_DESTROY(table);
	if (EG(exception)) {
		smart_str_free(&out);
		return NULL;
	}
	return smart_str_extract(&out);
}

/*
 * Unserializes bytes[0..len) into *rv exactly as unserialize() without options does (the same
 * notice for bytes that are not serializer output, the same handling of references, cycles and
 * max_depth): *rv is the value, or false after a notice or with an exception pending.
 */
void apcdb_unserialize(zval *rv, const char *bytes, size_t len)
{
	ZVAL_NULL(rv);
	php_unserialize_with_options(rv, bytes, len, NULL, "unserialize");
}
