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
 * apcdb's native array encodings (SPEC.md §10): arrays whose elements are null, booleans, ints,
 * floats, strings or such arrays are written as a compact binary form that is read back straight
 * into a PHP array, without PHP's serializer (whose text format must be parsed and whose
 * back-reference table records every element). Anything else inside (an object, a shared
 * reference, a resource) makes the caller use the serializer for the whole value, so references
 * and objects keep the serializer's semantics.
 *
 * Written now: tag 9, the compact form. Every length, count and int is a LEB128 varint (ints
 * zigzagged first), so small numbers and short strings take a byte or two of header, and a list
 * (keys 0..n-1 in order) stores no keys at all:
 *
 *   body    = varint(count << 1 | is_list), then count elements
 *   element = value (list), or key value
 *   key     = varint(len << 2) + bytes for a string key; varint(zigzag(k) << 2 | 1) for an int
 *             key whose zigzag fits 62 bits; byte 2 + 8 bytes little-endian for any other int key;
 *             varint(i << 2 | 3) for a string key equal to the i-th one written in full in an
 *             array inside the value (the first KEY_REFS such keys are numbered from 0, in order;
 *             the keys of the outermost array, which cannot repeat there, are not numbered)
 *   value   = 0 null | 1 false | 2 true | 3 varint(zigzag(int)) | 4 8 IEEE bytes (LE)
 *             | 5 varint(len) + bytes | 9 body
 *
 * Still read: tag 8, the first form (fixed-width u32/i64 fields), written by earlier builds.
 */
#define NATIVE_ARRAY 8
#define COMPACT_ARRAY 9
/* Deeper arrays go through the serializer (which has its own depth handling). */
#define NATIVE_MAX_DEPTH 64
/*
 * The writer checks its room against an upper bound of each element's size (a varint counted as
 * its longest, 10 bytes): a buffer this much larger than apcdb_native_size() never runs short.
 */
#define NATIVE_SLACK 32

/*
 * Encoding is one pass into the caller's buffer, which is kept between stores and so is nearly
 * always big enough: every write is checked against its end, and a value that does not fit is
 * sized (native_size) and written again into a buffer of that size (plus NATIVE_SLACK). Nothing
 * is grown or trimmed on the way, so the bytes are written once.
 */
static inline size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline unsigned char *put_varint(unsigned char *p, uint64_t v)
{
	/* Most lengths, keys and ints of a cached array take one byte. */
	if (EXPECTED(v < 0x80)) {
		*p = (unsigned char)v;
		return p + 1;
	}
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	return p;
}

static inline uint64_t zigzag(zend_long v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* An int key's header: the zigzag with the kind in the low 2 bits, when it fits 62 bits. */
#define INT_KEY_SHORT_MAX ((uint64_t)1 << 62)

/*
 * Rows of a cached result share their keys: a key written once in full is referred to by its
 * number afterwards (fewer bytes to store, and on reading one key string for all the rows, its
 * hash computed once). Keys are matched by their hash, which a key of a PHP array already has
 * computed, then by identity (interned keys, a driver's column names) or by their bytes. Only the
 * keys of nested arrays take part (a flat array pays nothing for it), and the table is cleared
 * only when the first is met.
 */
#define KEY_REFS 64
#define KEY_SLOTS 128 /* a power of two, at least twice KEY_REFS */
#define KEY_SLOT_BITS 7
typedef struct {
	zend_string *key[KEY_REFS];
	unsigned char slot[KEY_SLOTS]; /* 1 + an index into key[], 0 for an empty slot */
	uint32_t n;
	int ready; /* slot[] cleared */
} key_table;

/* Clears the table before the first key that may be numbered (a nested hash). */
static inline void key_table_ready(key_table *t)
{
	if (!t->ready) {
		memset(t->slot, 0, sizeof(t->slot));
		t->ready = 1;
	}
}

/* The number of a key equal to `k` among the keys written in full so far; -1 when `k` is written
 * in full now (and numbered, while there is room). The sizing and the writing pass make the same
 * calls in the same order, so they number the same keys. */
static inline int key_ref(key_table *t, zend_string *k)
{
	/* Cached in the string (a hash table's key has it already): nothing is computed here. */
	zend_ulong hv = zend_string_hash_val(k);
	uint32_t h = (uint32_t)(hv * 0x9E3779B1u) >> (32 - KEY_SLOT_BITS);

	while (t->slot[h]) {
		zend_string *o = t->key[t->slot[h] - 1];

		if (o == k || (ZSTR_H(o) == hv && zend_string_equal_content(o, k))) {
			return t->slot[h] - 1;
		}
		h = (h + 1) & (KEY_SLOTS - 1);
	}
	if (t->n < KEY_REFS) {
		t->key[t->n] = k;
		t->slot[h] = (unsigned char)++t->n;
	}
	return -1;
}

static size_t native_size_array(key_table *kt, HashTable *ht, int depth);

/* Bytes one value takes (its tag byte included); 0 if it cannot be written natively. */
static size_t native_size(key_table *kt, zval *v, int depth)
{
	size_t n;

	switch (Z_TYPE_P(v)) {
	case IS_NULL:
	case IS_FALSE:
	case IS_TRUE:
		return 1;
	case IS_LONG:
		return 1 + varint_len(zigzag(Z_LVAL_P(v)));
	case IS_DOUBLE:
		return 9;
	case IS_STRING:
		return 1 + varint_len(Z_STRLEN_P(v)) + Z_STRLEN_P(v);
	case IS_ARRAY:
		if (depth >= NATIVE_MAX_DEPTH) {
			return 0;
		}
		n = native_size_array(kt, Z_ARRVAL_P(v), depth + 1);
		return n ? 1 + n : 0;
	case IS_REFERENCE:
		/* A reference nothing else holds (left by a foreach by reference) is written as its
		 * value, as serialize() writes it; a shared one needs the serializer's back-references. */
		if (Z_REFCOUNT_P(v) == 1) {
			return native_size(kt, Z_REFVAL_P(v), depth);
		}
		return 0;
	default:
		/* Objects, shared references, resources, indirect slots: the serializer's job. */
		return 0;
	}
}

/* Whether the array's keys are 0..n-1 in order (written without keys): a packed array without
 * holes, which is what a list literal, [] appends and array_values() make. */
static inline int is_list(HashTable *ht)
{
	return HT_IS_PACKED(ht) && HT_IS_WITHOUT_HOLES(ht);
}

static size_t native_size_array(key_table *kt, HashTable *ht, int depth)
{
	zend_ulong h;
	zend_string *key;
	zval *v;
	int list = is_list(ht);
	size_t n = varint_len((uint64_t)zend_hash_num_elements(ht) << 1), one;

	if (depth > 0 && !list) {
		key_table_ready(kt);
	}
	ZEND_HASH_FOREACH_KEY_VAL(ht, h, key, v) {
		if (list) {
			/* no key */
		} else if (key) {
			int ref = depth > 0 ? key_ref(kt, key) : -1;

			n += ref >= 0 ? varint_len((uint64_t)ref << 2 | 3)
				: varint_len((uint64_t)ZSTR_LEN(key) << 2) + ZSTR_LEN(key);
		} else if (zigzag((zend_long)h) < INT_KEY_SHORT_MAX) {
			n += varint_len(zigzag((zend_long)h) << 2 | 1);
		} else {
			n += 9;
		}
		one = native_size(kt, v, depth);
		if (!one) {
			return 0;
		}
		n += one;
	} ZEND_HASH_FOREACH_END();
	return n;
}

/* The tags of null, false and true are their type codes less IS_NULL's. */
_Static_assert(IS_FALSE - IS_NULL == 1 && IS_TRUE - IS_NULL == 2, "zval type codes");

typedef struct {
	unsigned char *end;
	/* Set when the buffer ran out (as opposed to a value that needs the serializer). */
	int short_of_room;
	key_table keys;
} native_writer;

static inline unsigned char *put_le64(unsigned char *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(p, &v, 8);
#else
	for (int i = 0; i < 8; i++) {
		p[i] = (unsigned char)(v >> (8 * i));
	}
#endif
	return p + 8;
}

/* Copies n bytes; keys and strings are mostly short, where a call to memcpy costs more than
 * the copy (fixed-size memcpy compiles to plain moves; two that overlap cover a range of
 * lengths without a loop). */
static inline unsigned char *put_bytes(unsigned char *p, const char *s, size_t n)
{
	if (EXPECTED(n <= 16)) {
		if (n >= 8) {
			memcpy(p, s, 8);
			memcpy(p + n - 8, s + n - 8, 8);
		} else if (n >= 4) {
			memcpy(p, s, 4);
			memcpy(p + n - 4, s + n - 4, 4);
		} else if (n >= 2) {
			memcpy(p, s, 2);
			memcpy(p + n - 2, s + n - 2, 2);
		} else if (n) {
			*p = (unsigned char)*s;
		}
		return p + n;
	}
	memcpy(p, s, n);
	return p + n;
}

static unsigned char *native_write_array(native_writer *w, unsigned char *p, HashTable *ht,
	int depth);

/*
 * Writes one element at p (its key unless `with_key` is 0, then its value) and returns its end;
 * NULL when the value needs the serializer, or when the buffer ran out (w->short_of_room). The
 * checks are native_size's; one room check covers the key and the value, counting each varint as
 * 10 bytes (an array value checks its own body).
 */
static zend_always_inline unsigned char *native_write_element(native_writer *w, unsigned char *p,
	zend_string *key, zend_ulong h, int with_key, zval *v, int depth)
{
	/* Key (10 + its bytes), tag (1), payload (10 + a string's bytes). */
	size_t need = 21;

	if (Z_TYPE_P(v) == IS_REFERENCE) {
		/* A reference nothing else holds is written as its value (native_size). */
		if (Z_REFCOUNT_P(v) != 1) {
			return NULL;
		}
		v = Z_REFVAL_P(v);
	}
	if (Z_TYPE_P(v) == IS_STRING) {
		need += Z_STRLEN_P(v);
	}
	if (with_key && key) {
		need += ZSTR_LEN(key);
	}
	if (UNEXPECTED((size_t)(w->end - p) < need)) {
		w->short_of_room = 1;
		return NULL;
	}
	if (!with_key) {
		/* Keys 0..n-1 of a list: implied by the position. */
	} else if (key) {
		int ref = depth > 0 ? key_ref(&w->keys, key) : -1;

		if (ref >= 0) {
			p = put_varint(p, (uint64_t)ref << 2 | 3);
		} else {
			p = put_varint(p, (uint64_t)ZSTR_LEN(key) << 2);
			p = put_bytes(p, ZSTR_VAL(key), ZSTR_LEN(key));
		}
	} else if (zigzag((zend_long)h) < INT_KEY_SHORT_MAX) {
		p = put_varint(p, zigzag((zend_long)h) << 2 | 1);
	} else {
		*p++ = 2;
		p = put_le64(p, (uint64_t)h);
	}
	switch (Z_TYPE_P(v)) {
	case IS_NULL:
	case IS_FALSE:
	case IS_TRUE:
		/* The tags of null, false and true are 0, 1 and 2 (SPEC.md §10). */
		*p++ = (unsigned char)(Z_TYPE_P(v) - IS_NULL);
		return p;
	case IS_LONG:
		*p++ = 3;
		return put_varint(p, zigzag(Z_LVAL_P(v)));
	case IS_DOUBLE: {
		uint64_t bits;
		memcpy(&bits, &Z_DVAL_P(v), 8);
		*p++ = 4;
		return put_le64(p, bits);
	}
	case IS_STRING:
		*p++ = 5;
		p = put_varint(p, Z_STRLEN_P(v));
		return put_bytes(p, Z_STRVAL_P(v), Z_STRLEN_P(v));
	case IS_ARRAY:
		if (depth >= NATIVE_MAX_DEPTH) {
			return NULL;
		}
		*p++ = COMPACT_ARRAY;
		return native_write_array(w, p, Z_ARRVAL_P(v), depth + 1);
	default:
		/* Objects, shared references, resources, indirect slots: the serializer's job. */
		return NULL;
	}
}

/*
 * Writes the body of an array at p (header, then each element) and returns its end; NULL when
 * something in it needs the serializer, or when the buffer ran out (w->short_of_room). A list,
 * a packed array and a hash each get a loop of their own (PHP's generic loop tests which kind
 * the table is at every element).
 */
static unsigned char *native_write_array(native_writer *w, unsigned char *p, HashTable *ht,
	int depth)
{
	zend_ulong h;
	zend_string *key;
	zval *v;
	int list = is_list(ht);

	if (w->end - p < 10) {
		w->short_of_room = 1;
		return NULL;
	}
	p = put_varint(p, (uint64_t)zend_hash_num_elements(ht) << 1 | (uint64_t)list);
	if (list) {
		ZEND_HASH_PACKED_FOREACH_VAL(ht, v) {
			p = native_write_element(w, p, NULL, 0, 0, v, depth);
			if (!p) {
				return NULL;
			}
		} ZEND_HASH_FOREACH_END();
	} else if (HT_IS_PACKED(ht)) {
		ZEND_HASH_PACKED_FOREACH_KEY_VAL(ht, h, v) {
			p = native_write_element(w, p, NULL, h, 1, v, depth);
			if (!p) {
				return NULL;
			}
		} ZEND_HASH_FOREACH_END();
	} else {
		if (depth > 0) {
			key_table_ready(&w->keys);
		}
		ZEND_HASH_MAP_FOREACH_KEY_VAL(ht, h, key, v) {
			p = native_write_element(w, p, key, h, 1, v, depth);
			if (!p) {
				return NULL;
			}
		} ZEND_HASH_FOREACH_END();
	}
	return p;
}

/*
 * Writes the compact encoding of the array *value, prefixed with `tag`, into out[0..cap).
 * Returns the bytes written; 0 when *value is not an array or something in it needs the
 * serializer; (size_t)-1 when it did not fit (apcdb_native_size() then says how much it takes:
 * a buffer NATIVE_SLACK bytes larger always fits). Runs no user code.
 */
size_t apcdb_native_write(zval *value, unsigned char tag, char *out, size_t cap)
{
	native_writer w;
	unsigned char *p = (unsigned char *)out;

	w.end = (unsigned char *)out + cap;
	w.short_of_room = 0;
	w.keys.n = 0;
	w.keys.ready = 0;

	if (Z_TYPE_P(value) != IS_ARRAY) {
		return 0;
	}
	if (cap < 1) {
		return (size_t)-1;
	}
	*p++ = tag;
	p = native_write_array(&w, p, Z_ARRVAL_P(value), 0);
	if (!p) {
		return w.short_of_room ? (size_t)-1 : 0;
	}
	return (size_t)(p - (unsigned char *)out);
}

/*
 * Bytes the compact encoding of *value takes, its tag byte included; 0 when *value is not an
 * array or something in it needs the serializer. Runs no user code.
 */
size_t apcdb_native_size(zval *value)
{
	size_t n;

	if (Z_TYPE_P(value) != IS_ARRAY) {
		return 0;
	}
	key_table kt;

	kt.n = 0;
	kt.ready = 0;
	n = native_size_array(&kt, Z_ARRVAL_P(value), 0);
	return n ? 1 + n : 0;
}

/* The room apcdb_native_write() needs for an encoding of `len` bytes (apcdb_native_size()). */
size_t apcdb_native_room(size_t len)
{
	return len + NATIVE_SLACK;
}

/*
 * The compact encoding of *value (len bytes, from apcdb_native_size()) in a new string of PHP's
 * allocator, for values too large for the encoder's kept buffer: they count against
 * memory_limit as PHP's own strings do. NULL (nothing allocated) if it did not come out as
 * len bytes.
 */
zend_string *apcdb_native_encode(zval *value, unsigned char tag, size_t len)
{
	zend_string *s = zend_string_alloc(len + NATIVE_SLACK, 0);

	if (apcdb_native_write(value, tag, ZSTR_VAL(s), len + NATIVE_SLACK) != len) {
		zend_string_efree(s);
		return NULL;
	}
	ZSTR_LEN(s) = len;
	ZSTR_VAL(s)[len] = '\0';
	return s;
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
 * Reads an array in the first native form (tag 8, written by earlier builds; without its tag
 * byte) into *rv. Returns 0, with *rv null, when the bytes are not such an array.
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

/* A LEB128 varint of at most 64 bits; 0 if it runs off the end or overflows. */
static int get_varint(native_reader *r, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		unsigned char b;

		if (r->p >= r->end) {
			return 0;
		}
		b = *r->p++;
		/* The 10th byte holds only the top bit. */
		if (shift == 63 && b > 1) {
			return 0;
		}
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 1;
		}
	}
	return 0;
}

static inline zend_long unzigzag(uint64_t v)
{
	return (zend_long)((v >> 1) ^ (~(v & 1) + 1));
}

/* The string keys read in full so far, numbered as the writer numbered them (key_table); each
 * holds a reference, given back when the value is read. */
typedef struct {
	native_reader r;
	zend_string *key[KEY_REFS];
	uint32_t n;
} compact_reader;

static int compact_get_array(compact_reader *c, zval *rv, int depth);

/* Reads one compact value into *rv; on failure returns 0 and *rv owns nothing. */
static int compact_get(compact_reader *c, zval *rv, int depth)
{
	native_reader *r = &c->r;
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
		if (!get_varint(r, &n)) {
			return 0;
		}
		ZVAL_LONG(rv, unzigzag(n));
		return 1;
	case 4:
		if (!get_le(r, 8, &n)) {
			return 0;
		}
		memcpy(&d, &n, 8);
		ZVAL_DOUBLE(rv, d);
		return 1;
	case 5:
		if (!get_varint(r, &n) || (uint64_t)(r->end - r->p) < n) {
			return 0;
		}
		ZVAL_STRINGL_FAST(rv, (const char *)r->p, n);
		r->p += n;
		return 1;
	case COMPACT_ARRAY:
		if (depth >= NATIVE_MAX_DEPTH) {
			return 0;
		}
		return compact_get_array(c, rv, depth + 1);
	default:
		return 0;
	}
}

static int compact_get_array(compact_reader *c, zval *rv, int depth)
{
	native_reader *r = &c->r;
	uint64_t head, count, x, k;
	HashTable *ht;
	zval v;

	if (!get_varint(r, &head)) {
		return 0;
	}
	count = head >> 1;
	/* Every element takes at least a byte (a list's value) or two (a key and a value): a count
	 * beyond that is damage, not a big array. */
	if (count > (uint64_t)(r->end - r->p) / ((head & 1) ? 1 : 2) || count >= HT_MAX_SIZE) {
		return 0;
	}
	if (count == 0) {
		ZVAL_EMPTY_ARRAY(rv);
		return 1;
	}
	array_init_size(rv, (uint32_t)count);
	ht = Z_ARRVAL_P(rv);
	if (head & 1) {
		/* A list: the values go straight into a packed table, in order. */
		zval *slot;
		uint32_t i;

		zend_hash_real_init_packed(ht);
		slot = ht->arPacked;
		for (i = 0; i < (uint32_t)count; i++) {
			if (!compact_get(c, slot + i, depth)) {
				break;
			}
		}
		/* What the fill macros of zend_hash.h set: the elements read so far are the array's
		 * (all of them, or those to free on failure). */
		ht->nNumUsed = i;
		ht->nNumOfElements = i;
		ht->nNextFreeElement = i;
		ht->nInternalPointer = 0;
		if (i != (uint32_t)count) {
			goto fail;
		}
		return 1;
	}
	for (uint64_t i = 0; i < count; i++) {
		if (!get_varint(r, &x)) {
			goto fail;
		}
		switch (x & 3) {
		case 0: {
			zend_string *key;
			const char *bytes;

			k = x >> 2;
			if ((uint64_t)(r->end - r->p) < k) {
				goto fail;
			}
			bytes = (const char *)r->p;
			r->p += k;
			/* Numbered as the writer numbers them: the keys of nested arrays. */
			if (depth == 0 || c->n >= KEY_REFS) {
				if (!compact_get(c, &v, depth)) {
					goto fail;
				}
				zend_hash_str_update(ht, bytes, k, &v);
				continue;
			}
			key = zend_string_init(bytes, k, 0);
			c->key[c->n++] = zend_string_copy(key);
			if (!compact_get(c, &v, depth)) {
				zend_string_release(key);
				goto fail;
			}
			/* The hash table takes a reference of its own. */
			zend_hash_update(ht, key, &v);
			zend_string_release(key);
			continue;
		}
		case 3: {
			zend_string *key;

			if ((x >> 2) >= c->n) {
				goto fail;
			}
			key = c->key[x >> 2];
			if (!compact_get(c, &v, depth)) {
				goto fail;
			}
			zend_hash_update(ht, key, &v);
			continue;
		}
		case 1:
			k = (uint64_t)unzigzag(x >> 2);
			break;
		default:
			/* 2: the int key in 8 bytes (2 with more bits: not written). */
			if (x != 2 || !get_le(r, 8, &k)) {
				goto fail;
			}
		}
		if (!compact_get(c, &v, depth)) {
			goto fail;
		}
		zend_hash_index_update(ht, (zend_ulong)k, &v);
	}
	return 1;
fail:
	zval_ptr_dtor(rv);
	ZVAL_NULL(rv);
	return 0;
}

/*
 * Reads an array written by apcdb_native_write (without its tag byte, 9) into *rv. Returns 0,
 * with *rv null, when the bytes are not such an array.
 */
int apcdb_compact_decode(zval *rv, const char *bytes, size_t len)
{
	compact_reader c;
	int ok;

	c.r.p = (const unsigned char *)bytes;
	c.r.end = (const unsigned char *)bytes + len;
	c.n = 0;
	ok = compact_get_array(&c, rv, 0);
	for (uint32_t i = 0; i < c.n; i++) {
		zend_string_release(c.key[i]);
	}
	if (!ok) {
		ZVAL_NULL(rv);
		return 0;
	}
	if (c.r.p != c.r.end) {
		zval_ptr_dtor(rv);
		ZVAL_NULL(rv);
		return 0;
	}
	return 1;
}
