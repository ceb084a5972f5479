/*
 * The compiled reader's JSON walk (see _scan.c): each event's object descended along the
 * group's tree, every token validated and checked regular (a text DuckDB would write back
 * unchanged), and each path's value text noted (`Scan.start`/`size`) for the outputs to type
 * (_scan_outputs.c). Also the tree as Python gives it (`read_tree`).
 */
#include "_scan.h"

static const char *skip_value(Scan *s, const char *p, const char *end, int depth);

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
const char *object_members(Scan *s, const char *p, const char *end, int node, int depth,
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

int read_tree(PyObject *spec, Node **nodes_out, Member **members_out, int *n_members,
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
