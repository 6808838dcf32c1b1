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
