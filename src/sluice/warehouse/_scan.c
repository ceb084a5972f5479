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
 * valid JSON. Any other event is marked irregular and read by DuckDB instead (readers.py): the
 * reader is never wrong, only sometimes not the one that reads.
 *
 * The scan itself runs without the GIL, so the planner's two threads scan two groups at once.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_INT_DIGITS 18   /* integers DuckDB keeps as written */
#define MAX_SIG_DIGITS 15   /* decimals that survive a round trip through a double */

typedef struct {
    const char *key;
    Py_ssize_t len;
    int child;
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
    int32_t *offsets;
    uint8_t *valid;
} Column;

typedef struct {
    const Node *nodes;
    const Member *members;
    uint32_t *seen;     /* per member: the object instance that last had it */
    uint32_t stamp;
    const char **start; /* per column: this event's value text, or NULL */
    Py_ssize_t *size;
    int irregular;
    int ok;
} Scan;

static const char *skip_value(Scan *s, const char *p, const char *end, int depth);

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A string with no escape and no control character; p at the opening quote. */
static const char *string_token(Scan *s, const char *p, const char *end) {
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c == '\\' || c < 0x20) {
            s->irregular = 1;
            return NULL;
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

static const char *literal_token(Scan *s, const char *p, const char *end, const char *word,
                                 Py_ssize_t n) {
    if (end - p >= n && memcmp(p, word, (size_t)n) == 0)
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
    uint32_t stamp = ++s->stamp;
    for (;;) {
        if (p >= end || *p != '"')
            goto odd;
        const char *key = p + 1;
        if (!(p = string_token(s, p, end)))
            return NULL;
        Py_ssize_t len = p - 1 - key;
        if (p >= end || *p != ':')
            goto odd;
        p++;
        int found = -1;
        if (node >= 0) {
            const Node *n = &s->nodes[node];
            for (int i = n->first; i < n->first + n->count; i++) {
                const Member *m = &s->members[i];
                if (m->len == len && memcmp(m->key, key, (size_t)len) == 0) {
                    found = i;
                    break;
                }
            }
        }
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

static int grow(Column *c, Py_ssize_t need) {
    if (c->len + need <= c->cap)
        return 0;
    Py_ssize_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + need)
        cap *= 2;
    char *data = realloc(c->data, (size_t)cap);
    if (!data)
        return -1;
    c->data = data;
    c->cap = cap;
    return 0;
}

static void free_columns(Column *columns, int count) {
    if (!columns)
        return;
    for (int i = 0; i < count; i++) {
        free(columns[i].data);
        free(columns[i].offsets);
        free(columns[i].valid);
    }
    free(columns);
}

/* The tree as Python gives it: [(w, whole, object, [(key: bytes, child), ...]), ...], root
   first. Keys point into the bytes objects, which the list keeps alive during the scan. */
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

static PyObject *bitmap(const uint8_t *bits, Py_ssize_t count) {
    return PyBytes_FromStringAndSize((const char *)bits, (count + 7) / 8);
}

PyDoc_STRVAR(read_doc,
"read(offsets, data, first, count, tree, columns) -> (texts, ok, irregular)\n\n"
"Scans `count` JSON texts of an Arrow string array (its int32 `offsets` buffer, from index\n"
"`first`, and its `data` buffer). Returns, per column, (validity bitmap, int32 offsets, data)\n"
"of each path's JSON text, and two bitmaps: the event has no key the tree lacks, and the\n"
"event is irregular (its texts and ok are not given: DuckDB must read it).");

static PyObject *scan_read(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer offsets_view, data_view;
    Py_ssize_t first, count;
    PyObject *spec;
    int columns;
    if (!PyArg_ParseTuple(args, "y*y*nnO!i", &offsets_view, &data_view, &first, &count,
                          &PyList_Type, &spec, &columns))
        return NULL;
    PyObject *result = NULL;
    Node *nodes = NULL;
    Member *members = NULL;
    Column *cols = NULL;
    uint32_t *seen = NULL;
    const char **start = NULL;
    Py_ssize_t *size = NULL;
    uint8_t *ok_bits = NULL, *odd_bits = NULL;
    int n_members = 0, failed = 0;
    if (first < 0 || count < 0 || columns < 0 ||
        (first + count + 1) * (Py_ssize_t)sizeof(int32_t) > offsets_view.len) {
        PyErr_SetString(PyExc_ValueError, "offsets out of range");
        goto done;
    }
    if (read_tree(spec, &nodes, &members, &n_members, columns) < 0)
        goto done;
    Py_ssize_t bitmap_len = (count + 7) / 8;
    cols = calloc((size_t)(columns ? columns : 1), sizeof(Column));
    seen = calloc((size_t)(n_members ? n_members : 1), sizeof(uint32_t));
    start = calloc((size_t)(columns ? columns : 1), sizeof(char *));
    size = calloc((size_t)(columns ? columns : 1), sizeof(Py_ssize_t));
    ok_bits = calloc((size_t)(bitmap_len ? bitmap_len : 1), 1);
    odd_bits = calloc((size_t)(bitmap_len ? bitmap_len : 1), 1);
    if (!cols || !seen || !start || !size || !ok_bits || !odd_bits) {
        PyErr_NoMemory();
        goto done;
    }
    for (int c = 0; c < columns; c++) {
        cols[c].offsets = calloc((size_t)count + 1, sizeof(int32_t));
        cols[c].valid = calloc((size_t)(bitmap_len ? bitmap_len : 1), 1);
        if (!cols[c].offsets || !cols[c].valid) {
            PyErr_NoMemory();
            goto done;
        }
    }
    const int32_t *offsets = (const int32_t *)offsets_view.buf + first;
    const char *data = (const char *)data_view.buf;
    Py_BEGIN_ALLOW_THREADS
    Scan s = {nodes, members, seen, 0, start, size, 0, 1};
    for (Py_ssize_t row = 0; row < count && !failed; row++) {
        int32_t lo = offsets[row], hi = offsets[row + 1];
        const char *p = data + lo, *end = data + hi;
        if (lo < 0 || hi < lo || hi > data_view.len) {
            failed = 2;
            break;
        }
        memset(start, 0, sizeof(char *) * (size_t)columns);
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
            odd_bits[row >> 3] |= (uint8_t)(1u << (row & 7));
        else if (s.ok)
            ok_bits[row >> 3] |= (uint8_t)(1u << (row & 7));
        for (int c = 0; c < columns; c++) {
            Column *col = &cols[c];
            if (!s.irregular && start[c]) {
                if (col->len + size[c] > INT32_MAX || grow(col, size[c]) < 0) {
                    failed = 1;
                    break;
                }
                memcpy(col->data + col->len, start[c], (size_t)size[c]);
                col->len += size[c];
                col->valid[row >> 3] |= (uint8_t)(1u << (row & 7));
            }
            col->offsets[row + 1] = (int32_t)col->len;
        }
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        if (failed == 2)
            PyErr_SetString(PyExc_ValueError, "offsets point outside the data");
        else
            PyErr_NoMemory();
        goto done;
    }
    PyObject *texts = PyList_New(columns);
    if (!texts)
        goto done;
    for (int c = 0; c < columns; c++) {
        PyObject *item = Py_BuildValue(
            "(NNN)", bitmap(cols[c].valid, count),
            PyBytes_FromStringAndSize((const char *)cols[c].offsets,
                                      (count + 1) * (Py_ssize_t)sizeof(int32_t)),
            PyBytes_FromStringAndSize(cols[c].data ? cols[c].data : "", cols[c].len));
        if (!item) {
            Py_DECREF(texts);
            goto done;
        }
        PyList_SET_ITEM(texts, c, item);
    }
    result = Py_BuildValue("(NNN)", texts, bitmap(ok_bits, count), bitmap(odd_bits, count));
done:
    free_columns(cols, columns);
    free(nodes);
    free(members);
    free(seen);
    free((void *)start);
    free(size);
    free(ok_bits);
    free(odd_bits);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    return result;
}

static PyMethodDef methods[] = {
    {"read", scan_read, METH_VARARGS, read_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan",
    "The columnar planner's compiled JSON reader (see sluice.warehouse.readers).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
