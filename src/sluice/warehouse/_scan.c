/*
 * sluice.warehouse._scan: the columnar planner's compiled reader (see readers.py).
 *
 * One pass over each event's JSON gives, for every key path of the group's tree, the value's
 * JSON text exactly as DuckDB's `json_extract(payload, path)::VARCHAR` would (as Arrow string
 * columns), and whether the event holds no key the tree lacks (the list reader's length check).
 *
 * It copies value texts verbatim, so it only vouches for events whose texts are already what
 * DuckDB would write: no whitespace between tokens, no escape in any string, numbers in the
 * forms DuckDB writes back unchanged, no repeated key, no array under a path with children,
 * valid JSON in UTF-8. Any other event is marked irregular and read by DuckDB instead
 * (readers.py): the reader is never wrong, only sometimes not the one that reads. Texts come
 * from an Arrow string array (`read`) or a tuple of bytes objects (`read_bytes`: the lake reads
 * the log's payloads where they are, without joining them into one buffer first).
 *
 * For the events it reads, it also types the stage's columns as sqlfit.py's SQL would
 * (`outputs`): each value is exactly what that SQL gives, or NULL where it is unsure (a
 * timestamp it does not know, a text the SQL would leave to Python); a present value that comes
 * out NULL sets the row's flag, and Python looks at it, as it does for the SQL's NULLs.
 *
 * The scan itself runs without the GIL, so the planner's two threads scan two groups at once.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_pool.h"

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define COLD __attribute__((noinline, cold))
#else
#define PREFETCH(p) ((void)(p))
#define ALWAYS_INLINE inline
#define COLD
#endif

/* The fast paths: strings scanned 16 bytes at a time with SSE2, which is part of x86-64 itself
   (every such CPU has it: no runtime check; elsewhere a byte at a time), known keys matched on
   the payload's bytes before scanning them (with their quote and colon in one 16-byte compare
   where SSE2 is built in), and timestamps in the minute of the one before read from their
   seconds on. `_scan.fast(False)` turns them off: the tests compare both ways. */
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>
#define SCAN_SSE2 1
#endif
static int use_fast = 1;

#define PREFETCH_AHEAD 4
#define MAX_DEPTH 64
#define MAX_INT_DIGITS 18   /* integers DuckDB keeps as written */
#define MAX_SIG_DIGITS 15   /* decimals that survive a round trip through a double */

typedef struct {
    const char *key;
    Py_ssize_t len;
    int child;
    int plain; /* no quote, backslash or control byte: the key's bytes are its JSON text */
    /* A plain key of up to 14 bytes as the payload holds it, `key":`, compared 16 bytes at a
       time (`pattern` under `mask`, one bit a byte): one compare instead of a byte loop. */
    char pattern[16];
    unsigned mask;
} Member;

typedef struct {
    int w;          /* output column of this path's text, or -1 (not read) */
    int whole;      /* an object value is checked against the members (read whole) */
    int object;     /* an object value is flattened into the members */
    int first;      /* members[first : first + count] */
    int count;
} Node;

typedef struct {
    char *data;
    Py_ssize_t len, cap;
    size_t block; /* data's block (_pool.c); cap is at most INT32_MAX of it */
    int32_t *offsets;
    size_t offsets_block;
} Column;

typedef struct {
    const Node *nodes;
    const Member *members;
    uint32_t *seen;     /* per member: the object instance that last had it */
    int n_seen;
    uint32_t stamp;
    const char **start; /* per column: this event's value text, or NULL */
    Py_ssize_t *size;
    int irregular;
    int ok;
    int fast;
} Scan;

static const char *skip_value(Scan *s, const char *p, const char *end, int depth);

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* a[:n] == b[:n], inline: keys are short, and a call to memcmp per key cost more than the
   comparison. */
static inline int same_bytes(const char *a, const char *b, Py_ssize_t n) {
    uint64_t x, y;
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return 0;
    }
    if (n >= 4) {
        uint32_t u, v;
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v)
            return 0;
        a += 4;
        b += 4;
        n -= 4;
    }
    for (; n > 0; n--)
        if (*a++ != *b++)
            return 0;
    return 1;
}

/* The end of the well-formed UTF-8 sequence at p (a byte >= 0x80), or NULL. */
static const char *utf8_char(const char *at, const char *end) {
    const unsigned char *p = (const unsigned char *)at;
    unsigned c = p[0];
    int n = (c >= 0xC2 && c <= 0xDF)   ? 1
            : (c >= 0xE0 && c <= 0xEF) ? 2
            : (c >= 0xF0 && c <= 0xF4) ? 3
                                       : 0;
    if (!n || end - at <= n)
        return NULL;
    for (int i = 1; i <= n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return NULL;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xF0 && p[1] < 0x90) || /* overlong */
        (c == 0xED && p[1] > 0x9F) ||                                /* a surrogate */
        (c == 0xF4 && p[1] > 0x8F))                                  /* past U+10FFFF */
        return NULL;
    return at + n + 1;
}

/* A string of UTF-8 text with no escape and no control character; p at the opening quote.
   (Bytes past 0x7F are only valid inside strings, so a regular event is UTF-8 text.) */
static const char *string_token(Scan *s, const char *p, const char *end) {
    p++;
#ifdef SCAN_SSE2
    if (s->fast) {
        /* 16 bytes at a time to the next byte that is not plain ASCII text: a quote, a
           backslash, a control character or a byte past 0x7F, which the loop below judges */
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                      control = _mm_set1_epi8(0x1F);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_min_epu8(v, control), v));
            unsigned mask = (unsigned)(_mm_movemask_epi8(hit) | _mm_movemask_epi8(v));
            if (!mask) {
                p += 16;
                continue;
            }
            p += __builtin_ctz(mask);
            if (*p == '"')
                return p + 1;
            if ((unsigned char)*p < 0x80 || !(p = utf8_char(p, end))) {
                s->irregular = 1;
                return NULL;
            }
        }
    }
#endif
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c == '\\' || c < 0x20) {
            s->irregular = 1;
            return NULL;
        }
        if (c >= 0x80) {
            const char *q = utf8_char(p, end);
            if (!q) {
                s->irregular = 1;
                return NULL;
            }
            p = q - 1;
        }
    }
    s->irregular = 1;
    return NULL;
}

/* A number in a form DuckDB writes back byte for byte; anything else is irregular. */
static const char *number_token(Scan *s, const char *p, const char *end) {
    const char *q = p;
    int negative = 0, int_digits = 0, frac_digits = 0;
    if (q < end && *q == '-') {
        negative = 1;
        q++;
    }
    if (q >= end || !is_digit(*q))
        goto odd;
    if (*q == '0') {
        q++;
        int_digits = 0; /* a leading 0 is not a significant digit */
        if (q < end && is_digit(*q))
            goto odd;
    } else {
        while (q < end && is_digit(*q)) {
            q++;
            int_digits++;
        }
    }
    if (q < end && *q == '.') {
        const char *frac = ++q;
        while (q < end && is_digit(*q))
            q++;
        frac_digits = (int)(q - frac);
        if (frac_digits == 0)
            goto odd;
        /* "1.50" comes back "1.5", and tiny or long fractions change form: only N.0 or a
           fraction ending in a non-zero digit, 0.001 or more, 15 significant digits at most. */
        if (!(frac_digits == 1 && frac[0] == '0') && frac[frac_digits - 1] == '0')
            goto odd;
        if (int_digits == 0 && frac_digits >= 3 && frac[0] == '0' && frac[1] == '0')
            goto odd;
        if (int_digits + frac_digits > MAX_SIG_DIGITS)
            goto odd;
        if (negative && int_digits == 0 && frac_digits == 1 && frac[0] == '0')
            goto odd; /* -0.0 */
    } else {
        if (int_digits > MAX_INT_DIGITS)
            goto odd;
        if (negative && int_digits == 0)
            goto odd; /* -0 comes back 0 */
    }
    if (q < end && (*q == 'e' || *q == 'E'))
        goto odd;
    return q;
odd:
    s->irregular = 1;
    return NULL;
}

static inline const char *literal_token(Scan *s, const char *p, const char *end,
                                        const char *word, Py_ssize_t n) {
    if (end - p >= n && same_bytes(p, word, n))
        return p + n;
    s->irregular = 1;
    return NULL;
}

/* Any value, validated (and checked regular), that no path of the tree reads. */
static const char *skip_value(Scan *s, const char *p, const char *end, int depth) {
    if (p >= end || depth > MAX_DEPTH) {
        s->irregular = 1;
        return NULL;
    }
    switch (*p) {
    case '"':
        return string_token(s, p, end);
    case 't':
        return literal_token(s, p, end, "true", 4);
    case 'f':
        return literal_token(s, p, end, "false", 5);
    case 'n':
        return literal_token(s, p, end, "null", 4);
    case '[':
    case '{': {
        char close = *p == '[' ? ']' : '}';
        int object = *p == '{';
        p++;
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (object) {
                if (p >= end || *p != '"' || !(p = string_token(s, p, end)))
                    goto odd;
                if (p >= end || *p != ':')
                    goto odd;
                p++;
            }
            if (!(p = skip_value(s, p, end, depth + 1)))
                return NULL;
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == close)
                return p + 1;
            goto odd;
        }
    }
    default:
        if (*p == '-' || is_digit(*p))
            return number_token(s, p, end);
    }
odd:
    s->irregular = 1;
    return NULL;
}

static const char *object_members(Scan *s, const char *p, const char *end, int node, int depth,
                                  int need_members);

/* The value of a member the tree knows, at `node`. */
static const char *member_value(Scan *s, const char *p, const char *end, int node, int depth) {
    const Node *n = &s->nodes[node];
    const char *start = p, *q;
    if (p >= end) {
        s->irregular = 1;
        return NULL;
    }
    if (*p == '[' && n->count) { /* a pointer would index the array: DuckDB reads it */
        s->irregular = 1;
        return NULL;
    }
    if (n->w >= 0) {
        if (*p == '{')
            /* read whole: its members must be known too ({} is fine); a leaf only: an
               object with keys is a key the tree lacks */
            q = object_members(s, p, end, n->whole ? node : -1, depth + 1, 0);
        else
            q = skip_value(s, p, end, depth + 1);
        if (q) {
            s->start[n->w] = start;
            s->size[n->w] = q - start;
        }
        return q;
    }
    if (n->object && *p == '{')
        return object_members(s, p, end, node, depth + 1, 1);
    s->ok = 0; /* a scalar where the tree has only an object: its bytes are not accounted */
    return skip_value(s, p, end, depth + 1);
}

/* An object whose members `node` names (-1: none). With `need_members`, an empty object is
   not ok (the length check counts a flattened object only when something in it is read). */
static const char *object_members(Scan *s, const char *p, const char *end, int node, int depth,
                                  int need_members) {
    if (depth > MAX_DEPTH) {
        s->irregular = 1;
        return NULL;
    }
    p++; /* '{' */
    if (p < end && *p == '}') {
        if (need_members)
            s->ok = 0;
        return p + 1;
    }
    int next = node >= 0 ? s->nodes[node].first : 0; /* the member expected next */
    uint32_t stamp = ++s->stamp;
    if (stamp == 0) { /* wrapped: forget the old stamps */
        memset(s->seen, 0, sizeof(uint32_t) * (size_t)s->n_seen);
        stamp = s->stamp = 1;
    }
    const Node *n = node >= 0 ? &s->nodes[node] : NULL;
    for (;;) {
        if (p >= end || *p != '"')
            goto odd;
        const char *key = p + 1;
        int found = -1;
        /* Events mostly repeat the key order the tree learnt: the member after the last one
           found is tried first, on the bytes themselves (a plain key followed by a quote is
           that string token), then the key is scanned and all of them are tried. */
        if (n && s->fast && next < n->first + n->count) {
            const Member *m = &s->members[next];
#ifdef SCAN_SSE2
            if (m->mask && end - key >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)key);
                __m128i want = _mm_loadu_si128((const __m128i *)m->pattern);
                unsigned same = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, want));
                if ((same & m->mask) == m->mask) {
                    found = next;
                    p = key + m->len + 1;
                }
            } else
#endif
            if (m->plain && end - key > m->len && key[m->len] == '"' &&
                same_bytes(m->key, key, m->len)) {
                found = next;
                p = key + m->len + 1;
            }
        }
        if (found < 0) {
            if (!(p = string_token(s, p, end)))
                return NULL;
            Py_ssize_t len = p - 1 - key;
            if (n) {
                for (int i = n->first; i < n->first + n->count; i++) {
                    const Member *m = &s->members[i];
                    if (m->len == len && same_bytes(m->key, key, len)) {
                        found = i;
                        break;
                    }
                }
            }
        }
        if (found >= 0)
            next = found + 1;
        if (p >= end || *p != ':')
            goto odd;
        p++;
        if (found < 0) {
            s->ok = 0;
            p = skip_value(s, p, end, depth + 1);
        } else {
            if (s->seen[found] == stamp)
                goto odd; /* a repeated key: which value DuckDB takes is its business */
            s->seen[found] = stamp;
            p = member_value(s, p, end, s->members[found].child, depth);
        }
        if (!p)
            return NULL;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}')
            return p + 1;
        goto odd;
    }
odd:
    s->irregular = 1;
    return NULL;
}

/* memcpy for a value's text, mostly a few bytes: inline, as two overlapping loads and stores
   of its first and last bytes (reading nothing outside either text). */
static inline void copy(char *to, const char *from, Py_ssize_t n) {
    if (n > 32) {
        memcpy(to, from, (size_t)n);
    } else if (n >= 16) {
        char head[16], tail[16];
        memcpy(head, from, 16);
        memcpy(tail, from + n - 16, 16);
        memcpy(to, head, 16);
        memcpy(to + n - 16, tail, 16);
    } else if (n >= 8) {
        uint64_t head, tail;
        memcpy(&head, from, 8);
        memcpy(&tail, from + n - 8, 8);
        memcpy(to, &head, 8);
        memcpy(to + n - 8, &tail, 8);
    } else if (n >= 4) {
        uint32_t head, tail;
        memcpy(&head, from, 4);
        memcpy(&tail, from + n - 4, 4);
        memcpy(to, &head, 4);
        memcpy(to + n - 4, &tail, 4);
    } else {
        for (Py_ssize_t i = 0; i < n; i++)
            to[i] = from[i];
    }
}

/* Room for `need` more bytes (the caller checked that the text stays within int32 offsets):
   out of line and marked cold, so that append_text, inlined, is a compare and a copy. */
static COLD int grow(Column *c, Py_ssize_t need);
static int grow(Column *c, Py_ssize_t need) {
    size_t block;
    size_t want = (size_t)(c->len + need);
    if (c->block && want < 2 * c->block) /* the next size up: doubling, as realloc's growth */
        want = 2 * c->block;
    char *data = pool_take(want, &block);
    if (!data)
        return -1;
    if (c->len)
        memcpy(data, c->data, (size_t)c->len);
    pool_give(c->data, c->block);
    c->data = data;
    c->block = block;
    /* the capacity never passes what int32 offsets reach */
    c->cap = block > INT32_MAX ? INT32_MAX : (Py_ssize_t)block;
    return 0;
}

/* What an output column holds (readers.py names them). */
enum {
    OP_RAW,        /* the JSON text, as json_extract gives it */
    OP_STRING,     /* json_extract_string: a string unquoted, null NULL, else the JSON text */
    OP_TEXT_ALL,   /* sqlfit._text(objects=True) */
    OP_TEXT,       /* sqlfit._text(objects=False) */
    OP_MOMENT_TEXT,/* a non-string as _text(objects=True); strings are Python's */
    OP_INTEGER,
    OP_FLOAT,
    OP_BOOLEAN,
    OP_TIMESTAMP,  /* microseconds since 1970 */
    OP_NONE,       /* always NULL */
    OP_COUNT
};
enum { PRESENT_ANY, PRESENT_VALUE }; /* sqlfit.present_sql: ids/names/moments, or values */

typedef struct {
    int op, presence, path, alt, flagged;
} Out;

typedef struct {
    uint8_t *valid;
    Column text;       /* string ops */
    uint8_t *fixed;    /* 8 bytes a row (integers, floats, timestamps) or a bitmap (booleans) */
    size_t fixed_block; /* 8 bytes a row: its block (_pool.c); a bitmap: 0 (malloc's) */
} Output;

static int is_string_op(int op) { return op <= OP_MOMENT_TEXT; }

/* The JSON text was there and not null (and, for values, not an object: those flatten). */
static int present(const char *w, Py_ssize_t n, int presence) {
    if (!w || (n == 4 && memcmp(w, "null", 4) == 0))
        return 0;
    return presence != PRESENT_VALUE || w[0] != '{';
}

/* sqlfit.GUARD: texts whose rendering by DuckDB and by Python may differ. */
static int guarded(const char *w, Py_ssize_t n) {
    int run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = w[i];
        if (c == '\\')
            return 1;
        if (is_digit(c)) {
            if (++run >= 16)
                return 1;
            if (i + 1 < n && (w[i + 1] == 'e' || w[i + 1] == 'E'))
                return 1;
            if (c == '0' && i + 5 < n && memcmp(w + i + 1, ".0000", 5) == 0)
                return 1;
        } else {
            run = 0;
        }
    }
    return 0;
}

static const double POWERS[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                                1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* A regular number token (number_token) as a double: at most 15 significant digits and no
   exponent, so digits / 10^k, both exact, divides to the correctly rounded value; integers of
   up to 18 digits convert correctly rounded. Returns 0 for anything else. */
static int number_value(const char *w, Py_ssize_t n, double *out, int64_t *integer,
                        int *is_integer) {
    Py_ssize_t i = 0;
    int negative = 0, frac = -1;
    int64_t digits = 0;
    if (n && w[0] == '-') {
        negative = 1;
        i = 1;
    }
    if (i >= n || !is_digit(w[i]))
        return 0;
    for (; i < n; i++) {
        if (w[i] == '.') {
            frac = 0;
            continue;
        }
        if (!is_digit(w[i]))
            return 0;
        digits = digits * 10 + (w[i] - '0');
        if (frac >= 0)
            frac++;
    }
    *is_integer = frac < 0;
    if (frac < 0) {
        *integer = negative ? -digits : digits;
        *out = (double)*integer;
    } else {
        if (frac > 15)
            return 0;
        double value = (double)digits / POWERS[frac];
        *out = negative ? -value : value;
    }
    return 1;
}

static int days_in_month(int year, int month) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return days[month - 1];
}

static int digits_at(const char *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* The last timestamp's date, hour and minute ("YYYY-MM-DDTHH:MM:", checked in range) and
   that minute's microseconds since 1970: an event's four timestamps, and the events of a group
   in log order, mostly share their minute, and a text that starts the same only needs its
   seconds read (a sixth of the reader's time went to whole timestamps). Fast path only. */
#define MINUTE_LEN 17
typedef struct {
    char minute[MINUTE_LEN];
    int64_t micros;
    int known;
} Minutes;

/* Seconds, fraction and 'Z' after the minute ("SS", "SS.mmm" or "SS.uuuuuu", then 'Z'), as
   microseconds, or -1. */
static int64_t seconds_of(const char *t, Py_ssize_t len) {
    int second, micros = 0;
    if (!digits_at(t + 17, 2, &second) || second > 59 || t[len - 1] != 'Z')
        return -1;
    if (len > 20) {
        int fraction, places = (int)len - 21;
        if (t[19] != '.' || !digits_at(t + 20, places, &fraction))
            return -1;
        micros = places == 3 ? fraction * 1000 : fraction;
    }
    return (int64_t)second * 1000000 + micros;
}

/* A quoted ISO-8601 text in one of sqlfit.TIMESTAMP_GLOBS' shapes, with every field in range,
   as microseconds since 1970 (UTC); 0 when not (the SQL's TRY_CAST or Python decides then).
   With `minutes`, a text in the minute it holds is read from its seconds on. */
static int timestamp_value(const char *w, Py_ssize_t n, int64_t *out, Minutes *minutes) {
    if (minutes && minutes->known && (n == 22 || n == 26 || n == 29) && w[0] == '"' &&
        w[n - 1] == '"' && same_bytes(w + 1, minutes->minute, MINUTE_LEN)) {
        int64_t within = seconds_of(w + 1, n - 2);
        if (within < 0)
            return 0;
        *out = minutes->micros + within;
        return 1;
    }
    if (n < 12 || w[0] != '"' || w[n - 1] != '"')
        return 0;
    const char *t = w + 1;
    Py_ssize_t len = n - 2;
    int year, month, day, hour = 0, minute = 0, second = 0, micros = 0;
    if (!(len == 10 || len == 20 || len == 24 || len == 27))
        return 0;
    if (!digits_at(t, 4, &year) || t[4] != '-' || !digits_at(t + 5, 2, &month) || t[7] != '-' ||
        !digits_at(t + 8, 2, &day))
        return 0;
    if (len > 10) {
        if (t[10] != 'T' || !digits_at(t + 11, 2, &hour) || t[13] != ':' ||
            !digits_at(t + 14, 2, &minute) || t[16] != ':' || !digits_at(t + 17, 2, &second) ||
            t[len - 1] != 'Z')
            return 0;
        if (len > 20) {
            int fraction, places = (int)len - 21;
            if (t[19] != '.' || !digits_at(t + 20, places, &fraction))
                return 0;
            micros = places == 3 ? fraction * 1000 : fraction;
        }
    }
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 59)
        return 0;
    /* days from civil (proleptic Gregorian), 1970-01-01 = 0 */
    int y = month <= 2 ? year - 1 : year;
    int era = y / 400;
    int yoe = y - era * 400;
    int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    int64_t at_minute = (days * 86400 + hour * 3600 + minute * 60) * 1000000;
    *out = at_minute + (int64_t)second * 1000000 + micros;
    if (minutes && len > 10) {
        memcpy(minutes->minute, t, MINUTE_LEN);
        minutes->micros = at_minute;
        minutes->known = 1;
    }
    return 1;
}

/* Inlined: as a call per value it took a tenth of the reader's time. c->cap <= INT32_MAX, so
   a text within it fits int32 offsets. */
static ALWAYS_INLINE int append_text(Column *c, const char *p, Py_ssize_t n) {
    if (c->len + n > c->cap && (c->len + n > INT32_MAX || grow(c, n) < 0))
        return -1;
    copy(c->data + c->len, p, n);
    c->len += n;
    return 0;
}

/* One output value of one row: 1 when set, 0 when NULL, -1 when out of memory. */
static int emit(const Out *o, Output *out, Py_ssize_t row, const char *w, Py_ssize_t n,
                Minutes *minutes) {
    double number;
    int64_t integer;
    int is_integer, is_string = w && w[0] == '"';
    switch (o->op) {
    case OP_RAW:
        if (!w)
            return 0;
        return append_text(&out->text, w, n) < 0 ? -1 : 1;
    case OP_STRING:
    case OP_TEXT_ALL:
    case OP_TEXT:
    case OP_MOMENT_TEXT:
        if (!w || (n == 4 && memcmp(w, "null", 4) == 0))
            return 0;
        if (is_string) {
            if (o->op == OP_MOMENT_TEXT)
                return 0;
            return append_text(&out->text, w + 1, n - 2) < 0 ? -1 : 1;
        }
        if (o->op != OP_STRING && (guarded(w, n) || (o->op == OP_TEXT && w[0] == '{')))
            return 0;
        return append_text(&out->text, w, n) < 0 ? -1 : 1;
    case OP_INTEGER:
        if (!w || is_string || !number_value(w, n, &number, &integer, &is_integer))
            return 0;
        if (!is_integer) {
            if (!(number >= -9.223372036854775808e18 && number < 9.223372036854775808e18))
                return 0;
            integer = (int64_t)number;
            if ((double)integer != number)
                return 0; /* a fraction */
        }
        memcpy(out->fixed + row * 8, &integer, 8);
        return 1;
    case OP_FLOAT:
        if (!w || is_string || !number_value(w, n, &number, &integer, &is_integer))
            return 0;
        memcpy(out->fixed + row * 8, &number, 8);
        return 1;
    case OP_BOOLEAN:
        if (w && n == 4 && memcmp(w, "true", 4) == 0) {
            out->fixed[row >> 3] |= (uint8_t)(1u << (row & 7));
            return 1;
        }
        return w && n == 5 && memcmp(w, "false", 5) == 0;
    case OP_TIMESTAMP:
        if (!w || !timestamp_value(w, n, &integer, minutes))
            return 0;
        memcpy(out->fixed + row * 8, &integer, 8);
        return 1;
    default:
        return 0;
    }
}

static void free_outputs(Output *outputs, int count) {
    if (!outputs)
        return;
    for (int i = 0; i < count; i++) {
        free(outputs[i].valid);
        pool_give(outputs[i].text.data, outputs[i].text.block);
        pool_give(outputs[i].text.offsets, outputs[i].text.offsets_block);
        if (outputs[i].fixed_block)
            pool_give(outputs[i].fixed, outputs[i].fixed_block);
        else
            free(outputs[i].fixed);
    }
    free(outputs);
}

/* The outputs as Python gives them: [(op, presence, path, alt, flagged), ...]. */
static Out *read_outputs(PyObject *spec, int paths, int *count) {
    Py_ssize_t n = PyList_Size(spec);
    Out *outs = calloc((size_t)(n ? n : 1), sizeof(Out));
    if (!outs) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Out *o = &outs[i];
        if (!PyArg_ParseTuple(PyList_GetItem(spec, i), "iiiip", &o->op, &o->presence, &o->path,
                              &o->alt, &o->flagged) ||
            o->op < 0 || o->op >= OP_COUNT || o->path < -1 || o->path >= paths ||
            o->alt < -1 || o->alt >= paths) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a malformed output");
            free(outs);
            return NULL;
        }
    }
    *count = (int)n;
    return outs;
}

/* Whether a key's bytes, quoted, are its JSON string token: UTF-8 text with no quote,
   backslash or control character (object_members then matches it on the payload's bytes). */
static int plain_key(const char *key, Py_ssize_t len) {
    const char *end = key + len;
    for (const char *p = key; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20)
            return 0;
        if (c >= 0x80) {
            const char *q = utf8_char(p, end);
            if (!q)
                return 0;
            p = q - 1;
        }
    }
    return 1;
}

static int read_tree(PyObject *spec, Node **nodes_out, Member **members_out, int *n_members,
                     int columns) {
    Py_ssize_t n = PyList_Size(spec);
    if (n <= 0) {
        PyErr_SetString(PyExc_ValueError, "the tree needs a root");
        return -1;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GetItem(spec, i);
        if (!PyTuple_Check(item) || PyTuple_Size(item) != 4 ||
            !PyList_Check(PyTuple_GetItem(item, 3))) {
            PyErr_SetString(PyExc_TypeError, "a tree node is (w, whole, object, members)");
            return -1;
        }
        total += PyList_Size(PyTuple_GetItem(item, 3));
    }
    Node *nodes = calloc((size_t)n, sizeof(Node));
    Member *members = calloc((size_t)(total ? total : 1), sizeof(Member));
    if (!nodes || !members) {
        free(nodes);
        free(members);
        PyErr_NoMemory();
        return -1;
    }
    int at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GetItem(spec, i);
        PyObject *list = PyTuple_GetItem(item, 3);
        nodes[i].w = (int)PyLong_AsLong(PyTuple_GetItem(item, 0));
        nodes[i].whole = PyObject_IsTrue(PyTuple_GetItem(item, 1));
        nodes[i].object = PyObject_IsTrue(PyTuple_GetItem(item, 2));
        nodes[i].first = at;
        nodes[i].count = (int)PyList_Size(list);
        if (nodes[i].w >= columns || nodes[i].w < -1)
            goto bad;
        for (Py_ssize_t j = 0; j < nodes[i].count; j++, at++) {
            PyObject *pair = PyList_GetItem(list, j);
            char *key;
            Py_ssize_t len;
            if (!PyTuple_Check(pair) || PyTuple_Size(pair) != 2 ||
                PyBytes_AsStringAndSize(PyTuple_GetItem(pair, 0), &key, &len) < 0)
                goto bad;
            long child = PyLong_AsLong(PyTuple_GetItem(pair, 1));
            if (child <= 0 || child >= n)
                goto bad;
            members[at].key = key;
            members[at].len = len;
            members[at].child = (int)child;
            members[at].plain = plain_key(key, len);
            if (members[at].plain && len <= 14) {
                memcpy(members[at].pattern, key, (size_t)len);
                members[at].pattern[len] = '"';
                members[at].pattern[len + 1] = ':';
                members[at].mask = (1u << (len + 2)) - 1;
            }
        }
    }
    if (PyErr_Occurred())
        goto bad;
    *nodes_out = nodes;
    *members_out = members;
    *n_members = (int)total;
    return 0;
bad:
    free(nodes);
    free(members);
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "a malformed tree");
    return -1;
}

/* A buffer the reader filled, handed to Arrow as it is (`pa.py_buffer` keeps this object):
   copying each column into a bytes object cost a copy and fresh pages per value read. */
typedef struct {
    PyObject_HEAD
    void *data;
    Py_ssize_t len;
    size_t block; /* data's block, back to the pool with the Buffer */
} Buffer;

static int buffer_get(PyObject *self, Py_buffer *view, int flags) {
    Buffer *b = (Buffer *)self;
    return PyBuffer_FillInfo(view, self, b->data ? b->data : (void *)"", b->len, 1, flags);
}

static void buffer_dealloc(PyObject *self) {
    pool_give(((Buffer *)self)->data, ((Buffer *)self)->block);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs buffer_procs = {buffer_get, NULL};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sluice.warehouse._scan.Buffer",
    .tp_basicsize = sizeof(Buffer),
    .tp_dealloc = buffer_dealloc,
    .tp_as_buffer = &buffer_procs,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory the reader filled (read-only, through the buffer protocol).",
};

/* A Buffer owning `*data` (len bytes of a pool block); *data is NULL afterwards (the block goes
   back to the pool with the Buffer). */
static PyObject *owned(void **data, Py_ssize_t len, size_t block) {
    Buffer *b = PyObject_New(Buffer, &BufferType);
    if (!b)
        return NULL;
    b->data = *data;
    b->len = len;
    b->block = block;
    *data = NULL;
    return (PyObject *)b;
}

static PyObject *bitmap(const uint8_t *bits, Py_ssize_t count) {
    return PyBytes_FromStringAndSize((const char *)bits, (count + 7) / 8);
}

/* One output's Arrow buffers: (validity, offsets, data) for texts, (validity, values) else. */
static PyObject *output_buffers(const Out *o, Output *out, Py_ssize_t count) {
    if (is_string_op(o->op))
        return Py_BuildValue(
            "(NNN)", bitmap(out->valid, count),
            owned((void **)&out->text.offsets, (count + 1) * (Py_ssize_t)sizeof(int32_t),
                  out->text.offsets_block),
            owned((void **)&out->text.data, out->text.len, out->text.block));
    if (o->op == OP_BOOLEAN)
        return Py_BuildValue("(NN)", bitmap(out->valid, count), bitmap(out->fixed, count));
    if (o->op == OP_NONE)
        return Py_BuildValue("(N)", bitmap(out->valid, count));
    return Py_BuildValue("(NN)", bitmap(out->valid, count),
                         owned((void **)&out->fixed, count * 8, out->fixed_block));
}

/* The scan of `count` JSON texts (texts[i], sizes[i] bytes); see read_doc. */
static PyObject *scan_texts(const char *const *texts, const Py_ssize_t *sizes, Py_ssize_t count,
                            PyObject *spec, int paths, PyObject *out_spec) {
    PyObject *result = NULL;
    Node *nodes = NULL;
    Member *members = NULL;
    Out *outs = NULL;
    Output *outputs = NULL;
    uint32_t *seen = NULL;
    const char **start = NULL;
    Py_ssize_t *size = NULL;
    uint8_t *ok_bits = NULL, *odd_bits = NULL, *flag_bits = NULL;
    int n_members = 0, n_outs = 0, failed = 0;
    if (paths < 0) {
        PyErr_SetString(PyExc_ValueError, "paths out of range");
        goto done;
    }
    if (read_tree(spec, &nodes, &members, &n_members, paths) < 0)
        goto done;
    if (!(outs = read_outputs(out_spec, paths, &n_outs)))
        goto done;
    Py_ssize_t bitmap_len = (count + 7) / 8 + 1;
    outputs = calloc((size_t)(n_outs ? n_outs : 1), sizeof(Output));
    seen = calloc((size_t)(n_members ? n_members : 1), sizeof(uint32_t));
    start = calloc((size_t)(paths ? paths : 1), sizeof(char *));
    size = calloc((size_t)(paths ? paths : 1), sizeof(Py_ssize_t));
    ok_bits = calloc((size_t)bitmap_len, 1);
    odd_bits = calloc((size_t)bitmap_len, 1);
    flag_bits = calloc((size_t)bitmap_len, 1);
    if (!outputs || !seen || !start || !size || !ok_bits || !odd_bits || !flag_bits) {
        PyErr_NoMemory();
        goto done;
    }
    for (int i = 0; i < n_outs; i++) {
        Output *out = &outputs[i];
        out->valid = calloc((size_t)bitmap_len, 1);
        if (is_string_op(outs[i].op)) { /* every row's end is written */
            size_t bytes = ((size_t)count + 1) * sizeof(int32_t);
            out->text.offsets = pool_take(bytes, &out->text.offsets_block);
            if (out->text.offsets)
                out->text.offsets[0] = 0;
        } else if (outs[i].op == OP_BOOLEAN) {
            out->fixed = calloc((size_t)bitmap_len, 1);
        } else if (outs[i].op != OP_NONE) { /* zeros under NULLs, as calloc gave */
            out->fixed = pool_take(((size_t)count + 1) * 8, &out->fixed_block);
            if (out->fixed)
                memset(out->fixed, 0, ((size_t)count + 1) * 8);
        }
        if (!out->valid || (is_string_op(outs[i].op) && !out->text.offsets) ||
            (outs[i].op != OP_NONE && !is_string_op(outs[i].op) && !out->fixed)) {
            PyErr_NoMemory();
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    Scan s = {nodes, members, seen, n_members, 0, start, size, 0, 1, use_fast};
    Minutes minutes = {{0}, 0, 0};
    for (Py_ssize_t row = 0; row < count && !failed; row++) {
        const char *p = texts[row], *end = p + sizes[row];
        /* Texts lie apart in memory (a group's payloads are ~20 KB apart in the log's): the one
           PREFETCH_AHEAD rows on is fetched meanwhile, whole up to 2 KB. Measured on the
           bench's reads in place: 15-20 % less CPU than fetching the next one's first 512
           bytes. */
        if (row + PREFETCH_AHEAD < count) {
            const char *next = texts[row + PREFETCH_AHEAD];
            for (Py_ssize_t at = 0; at < sizes[row + PREFETCH_AHEAD] && at < 2048; at += 64)
                PREFETCH(next + at);
        }
        uint8_t bit = (uint8_t)(1u << (row & 7));
        memset(start, 0, sizeof(char *) * (size_t)paths);
        s.irregular = 0;
        s.ok = 1;
        if (p < end && *p == '{') {
            const char *q = object_members(&s, p, end, 0, 0, 1);
            if (q != end)
                s.irregular = 1;
        } else {
            s.irregular = 1;
        }
        if (s.irregular)
            odd_bits[row >> 3] |= bit;
        else if (s.ok)
            ok_bits[row >> 3] |= bit;
        for (int i = 0; i < n_outs; i++) {
            const Out *o = &outs[i];
            Output *out = &outputs[i];
            if (s.irregular) { /* nothing given for it: an empty text, where texts go */
                if (out->text.offsets)
                    out->text.offsets[row + 1] = (int32_t)out->text.len;
                continue;
            }
            const char *w = o->path >= 0 ? start[o->path] : NULL;
            Py_ssize_t n = o->path >= 0 ? size[o->path] : 0;
            if (o->alt >= 0 && !present(w, n, PRESENT_ANY)) { /* a page's name: else the property */
                const char *alt = start[o->alt];
                w = present(alt, size[o->alt], PRESENT_VALUE) ? alt : NULL;
                n = w ? size[o->alt] : 0;
            }
            int set = emit(o, out, row, w, n, s.fast ? &minutes : NULL);
            if (set < 0) {
                failed = 1;
                break;
            }
            if (set)
                out->valid[row >> 3] |= bit;
            else if (o->flagged && present(w, n, o->presence))
                flag_bits[row >> 3] |= bit;
            if (out->text.offsets)
                out->text.offsets[row + 1] = (int32_t)out->text.len;
        }
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *columns = PyList_New(n_outs);
    if (!columns)
        goto done;
    for (int i = 0; i < n_outs; i++) {
        PyObject *item = output_buffers(&outs[i], &outputs[i], count);
        if (!item) {
            Py_DECREF(columns);
            goto done;
        }
        PyList_SET_ITEM(columns, i, item);
    }
    result = Py_BuildValue("(NNNN)", columns, bitmap(flag_bits, count), bitmap(ok_bits, count),
                           bitmap(odd_bits, count));
done:
    free_outputs(outputs, n_outs);
    free(outs);
    free(nodes);
    free(members);
    free(seen);
    free((void *)start);
    free(size);
    free(ok_bits);
    free(odd_bits);
    free(flag_bits);
    return result;
}


PyDoc_STRVAR(read_doc,
"read(offsets, data, first, count, tree, paths, outputs) -> (columns, flag, ok, irregular)\n\n"
"Scans `count` JSON texts of an Arrow string array (its int32 `offsets` buffer, from index\n"
"`first`, and its `data` buffer) against `tree`, whose `paths` read paths are numbered from 0.\n"
"Returns each output's Arrow buffers, and three bitmaps: some flagged output was present but\n"
"came out NULL; the event has no key the tree lacks; the event is irregular (nothing else is\n"
"given for it: DuckDB must read it).");

static PyObject *scan_read(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer offsets_view, data_view;
    Py_ssize_t first, count;
    PyObject *spec, *out_spec, *result = NULL;
    int paths;
    if (!PyArg_ParseTuple(args, "y*y*nnO!iO!", &offsets_view, &data_view, &first, &count,
                          &PyList_Type, &spec, &paths, &PyList_Type, &out_spec))
        return NULL;
    const char **texts = NULL;
    Py_ssize_t *sizes = NULL;
    if (first < 0 || count < 0 ||
        (first + count + 1) * (Py_ssize_t)sizeof(int32_t) > offsets_view.len) {
        PyErr_SetString(PyExc_ValueError, "offsets out of range");
        goto done;
    }
    texts = calloc((size_t)(count ? count : 1), sizeof(char *));
    sizes = calloc((size_t)(count ? count : 1), sizeof(Py_ssize_t));
    if (!texts || !sizes) {
        PyErr_NoMemory();
        goto done;
    }
    const int32_t *offsets = (const int32_t *)offsets_view.buf + first;
    for (Py_ssize_t row = 0; row < count; row++) {
        int32_t lo = offsets[row], hi = offsets[row + 1];
        if (lo < 0 || hi < lo || hi > data_view.len) {
            PyErr_SetString(PyExc_ValueError, "offsets point outside the data");
            goto done;
        }
        texts[row] = (const char *)data_view.buf + lo;
        sizes[row] = hi - lo;
    }
    result = scan_texts(texts, sizes, count, spec, paths, out_spec);
done:
    free((void *)texts);
    free(sizes);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    return result;
}

PyDoc_STRVAR(read_bytes_doc,
"read_bytes(texts, tree, paths, outputs) -> (columns, flag, ok, irregular)\n\n"
"As `read`, over a tuple of bytes objects (a log's payloads, not copied into one buffer).");

static PyObject *scan_read_bytes(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *items, *spec, *out_spec, *result = NULL;
    int paths;
    if (!PyArg_ParseTuple(args, "O!O!iO!", &PyTuple_Type, &items, &PyList_Type, &spec, &paths,
                          &PyList_Type, &out_spec))
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    const char **texts = calloc((size_t)(count ? count : 1), sizeof(char *));
    Py_ssize_t *sizes = calloc((size_t)(count ? count : 1), sizeof(Py_ssize_t));
    if (!texts || !sizes) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t row = 0; row < count; row++) { /* the tuple keeps them alive, unchanged */
        PyObject *item = PyTuple_GET_ITEM(items, row);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "texts must be bytes");
            goto done;
        }
        texts[row] = PyBytes_AS_STRING(item);
        sizes[row] = PyBytes_GET_SIZE(item);
    }
    result = scan_texts(texts, sizes, count, spec, paths, out_spec);
done:
    free((void *)texts);
    free(sizes);
    return result;
}

PyDoc_STRVAR(fast_doc,
"fast(enabled) -> bool\n\n"
"Whether the reader takes its fast paths from now on (strings scanned 16 bytes at a time where\n"
"SSE2 is built in, known keys matched on the payload's bytes, timestamps read from their\n"
"seconds on in the minute of the one before) or reads a byte at a time;\n"
"returns the previous setting. The results are the same: the tests compare both ways.");

static PyObject *scan_fast(PyObject *self, PyObject *arg) {
    (void)self;
    int enabled = PyObject_IsTrue(arg);
    if (enabled < 0)
        return NULL;
    int before = use_fast;
    use_fast = enabled;
    return PyBool_FromLong(before);
}

PyDoc_STRVAR(release_doc,
"release() -> int\n\n"
"Frees the memory the reader's freed outputs left for the next ones to reuse (_pool.c);\n"
"returns how many bytes. The loader calls it after each load.");

static PyObject *scan_release(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromSize_t(pool_release());
}

PyDoc_STRVAR(kept_doc,
"kept() -> (blocks, bytes)\n\n"
"The freed output buffers kept for reuse now (_pool.c).");

static PyObject *scan_kept(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    size_t blocks, bytes;
    pool_stats(&blocks, &bytes);
    return Py_BuildValue("(nn)", (Py_ssize_t)blocks, (Py_ssize_t)bytes);
}

static PyMethodDef methods[] = {
    {"fast", scan_fast, METH_O, fast_doc},
    {"kept", scan_kept, METH_NOARGS, kept_doc},
    {"release", scan_release, METH_NOARGS, release_doc},
    {"read", scan_read, METH_VARARGS, read_doc},
    {"read_bytes", scan_read_bytes, METH_VARARGS, read_bytes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan",
    "The columnar planner's compiled JSON reader (see sluice.warehouse.readers).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) {
    if (PyType_Ready(&BufferType) < 0)
        return NULL;
    if (pool_init() < 0)
        return PyErr_NoMemory();
    return PyModule_Create(&module);
}
