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

/*
 * apcdb's native array encoding (SPEC.md §10, tag 8): arrays whose elements are null, booleans,
 * ints, floats, strings or such arrays are written as a compact binary form that is read back
 * straight into a PHP array, without PHP's serializer (whose text format must be parsed and whose
 * back-reference table records every element). Anything else inside (an object, a reference, a
 * resource) makes the caller use the serializer for the whole value, so references and objects
 * keep the serializer's semantics.
 *
 * Array body: element count (u32), then per element a key (0 + i64 for an int key, 1 + u32 length
 * + bytes for a string key) and a value: a tag byte as in §10 (0 null, 1 false, 2 true, 3 int as
 * i64, 4 float as its 8 IEEE bytes, 5 string as u32 length + bytes) or 8 followed by an array body.
 * All integers little-endian.
 */
#define NATIVE_ARRAY 8
/* Deeper arrays go through the serializer (which has its own depth handling). */
#define NATIVE_MAX_DEPTH 64

static void put_le(smart_str *out, uint64_t v, int bytes)
{
	char b[8];
	for (int i = 0; i < bytes; i++) {
		b[i] = (char)(v >> (8 * i));
	}
	smart_str_appendl(out, b, bytes);
}

static int native_put_array(smart_str *out, HashTable *ht, int depth);

/* Appends one value; 0 if it cannot be written natively. */
static int native_put(smart_str *out, zval *v, int depth)
{
	uint64_t bits;

	switch (Z_TYPE_P(v)) {
	case IS_NULL:
		smart_str_appendc(out, 0);
		return 1;
	case IS_FALSE:
		smart_str_appendc(out, 1);
		return 1;
	case IS_TRUE:
		smart_str_appendc(out, 2);
		return 1;
	case IS_LONG:
		smart_str_appendc(out, 3);
		put_le(out, (uint64_t)Z_LVAL_P(v), 8);
		return 1;
	case IS_DOUBLE:
		smart_str_appendc(out, 4);
		memcpy(&bits, &Z_DVAL_P(v), 8);
		put_le(out, bits, 8);
		return 1;
	case IS_STRING:
		if (Z_STRLEN_P(v) > UINT32_MAX) {
			return 0;
		}
		smart_str_appendc(out, 5);
		put_le(out, Z_STRLEN_P(v), 4);
		smart_str_appendl(out, Z_STRVAL_P(v), Z_STRLEN_P(v));
		return 1;
	case IS_ARRAY:
		if (depth >= NATIVE_MAX_DEPTH) {
			return 0;
		}
		smart_str_appendc(out, NATIVE_ARRAY);
		return native_put_array(out, Z_ARRVAL_P(v), depth + 1);
	case IS_REFERENCE:
		/* A reference nothing else holds (left by a foreach by reference) is written as its
		 * value, as serialize() writes it; a shared one needs the serializer's back-references. */
		if (Z_REFCOUNT_P(v) == 1) {
			return native_put(out, Z_REFVAL_P(v), depth);
		}
		return 0;
	default:
		/* Objects, shared references, resources, indirect slots: the serializer's job. */
		return 0;
	}
}

static int native_put_array(smart_str *out, HashTable *ht, int depth)
{
	zend_ulong h;
	zend_string *key;
	zval *v;

	put_le(out, zend_hash_num_elements(ht), 4);
	ZEND_HASH_FOREACH_KEY_VAL(ht, h, key, v) {
		if (key) {
			if (ZSTR_LEN(key) > UINT32_MAX) {
				return 0;
			}
			smart_str_appendc(out, 1);
			put_le(out, ZSTR_LEN(key), 4);
			smart_str_appendl(out, ZSTR_VAL(key), ZSTR_LEN(key));
		} else {
			smart_str_appendc(out, 0);
			put_le(out, (uint64_t)h, 8);
		}
		if (!native_put(out, v, depth)) {
			return 0;
		}
	} ZEND_HASH_FOREACH_END();
	return 1;
}

/*
 * The array *value in the native encoding, prefixed with `tag`; NULL (nothing allocated) when
 * something in it needs the serializer. Runs no user code.
 */
zend_string *apcdb_native_encode(zval *value, unsigned char tag)
{
	smart_str out = {0};

	if (Z_TYPE_P(value) != IS_ARRAY) {
		return NULL;
	}
	smart_str_appendc(&out, (char)tag);
	if (!native_put_array(&out, Z_ARRVAL_P(value), 0)) {
		smart_str_free(&out);
		return NULL;
	}
	return smart_str_extract(&out);
}

typedef struct {
	const unsigned char *p;
	const unsigned char *end;
} native_reader;

static int get_le(native_reader *r, int bytes, uint64_t *v)
{
	if (r->end - r->p < bytes) {
		return 0;
	}
	*v = 0;
	for (int i = 0; i < bytes; i++) {
		*v |= (uint64_t)r->p[i] << (8 * i);
	}
	r->p += bytes;
	return 1;
}

static int native_get_array(native_reader *r, zval *rv, int depth);

/* Reads one value into *rv; on failure returns 0 and *rv owns nothing. */
static int native_get(native_reader *r, zval *rv, int depth)
{
	uint64_t n;
	double d;

	if (r->p >= r->end) {
		return 0;
	}
	switch (*r->p++) {
	case 0:
		ZVAL_NULL(rv);
		return 1;
	case 1:
		ZVAL_FALSE(rv);
		return 1;
	case 2:
		ZVAL_TRUE(rv);
		return 1;
	case 3:
		if (!get_le(r, 8, &n)) {
			return 0;
		}
		ZVAL_LONG(rv, (zend_long)n);
		return 1;
	case 4:
		if (!get_le(r, 8, &n)) {
			return 0;
		}
		memcpy(&d, &n, 8);
		ZVAL_DOUBLE(rv, d);
		return 1;
	case 5:
		if (!get_le(r, 4, &n) || (uint64_t)(r->end - r->p) < n) {
			return 0;
		}
		ZVAL_STRINGL_FAST(rv, (const char *)r->p, n);
		r->p += n;
		return 1;
	case NATIVE_ARRAY:
		if (depth >= NATIVE_MAX_DEPTH) {
			return 0;
		}
		return native_get_array(r, rv, depth + 1);
	default:
		return 0;
	}
}

static int native_get_array(native_reader *r, zval *rv, int depth)
{
	uint64_t count, k;
	HashTable *ht;
	zval v;

	/* Every element takes at least 2 bytes: a count beyond that is damage, not a big array. */
	if (!get_le(r, 4, &count) || count > (uint64_t)(r->end - r->p) / 2) {
		return 0;
	}
	if (count == 0) {
		ZVAL_EMPTY_ARRAY(rv);
		return 1;
	}
	array_init_size(rv, (uint32_t)count);
	ht = Z_ARRVAL_P(rv);
	for (uint64_t i = 0; i < count; i++) {
		if (r->p >= r->end) {
			goto fail;
		}
		unsigned char kind = *r->p++;
		if (kind == 0) {
			if (!get_le(r, 8, &k) || !native_get(r, &v, depth)) {
				goto fail;
			}
			zend_hash_index_update(ht, (zend_ulong)k, &v);
		} else if (kind != 1) {
			goto fail;
		} else {
			const char *key;
			if (!get_le(r, 4, &k) || (uint64_t)(r->end - r->p) < k) {
				goto fail;
			}
			key = (const char *)r->p;
			r->p += k;
			if (!native_get(r, &v, depth)) {
				goto fail;
			}
			zend_hash_str_update(ht, key, k, &v);
		}
	}
	return 1;
fail:
	zval_ptr_dtor(rv);
	ZVAL_NULL(rv);
	return 0;
}

/*
 * Reads an array written by apcdb_native_encode (without its tag byte) into *rv. Returns 0, with
 * *rv null, when the bytes are not such an array.
 */
int apcdb_native_decode(zval *rv, const char *bytes, size_t len)
{
	native_reader r = {(const unsigned char *)bytes, (const unsigned char *)bytes + len};

	if (!native_get_array(&r, rv, 0)) {
		ZVAL_NULL(rv);
		return 0;
	}
	if (r.p != r.end) {
		zval_ptr_dtor(rv);
		ZVAL_NULL(rv);
		return 0;
	}
	return 1;
}
