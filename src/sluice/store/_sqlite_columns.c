/*
 * The SQLite log's rows column by column (`Reader.read_columns`, see _sqlite_read.c): a
 * consumer that works on columns (the lake) gets buffers, not a Python object per value. All
 * rows are stepped without the GIL into growing buffers: int64 values, int32 codes into a
 * column's distinct texts (source ids, types, event names: few), or int64 offsets and the bytes.
 */
#include "_sqlite_read.h"

/* Memory the reader filled, handed to Arrow as it is (`pa.py_buffer` keeps this object). */
typedef struct {
    char *data;
    size_t len, cap;
    int mapped; /* data is an anonymous mapping (Linux: big buffers), else malloc's */
} Grow;

typedef struct {
    PyObject_HEAD
    Grow memory;
} Block;

/* Big buffers are mappings in 2 MB huge pages where the kernel gives them (a 200 MB buffer of
   4 KB pages cost 50,000 page faults, a quarter of the read) and grow by mremap, which moves
   page tables, not bytes. Elsewhere realloc. */
#define MAPPED_FROM ((size_t)4 << 20)

static void grow_free(Grow *g) {
#ifdef __linux__
    if (g->mapped) {
        munmap(g->data, g->cap);
        g->data = NULL;
        return;
    }
#endif
    free(g->data);
    g->data = NULL;
}

static int grow_to(Grow *g, size_t cap) {
#ifdef __linux__
    if (cap >= MAPPED_FROM) {
        cap = (cap + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
        void *data;
        if (g->mapped) {
            data = mremap(g->data, g->cap, cap, MREMAP_MAYMOVE);
        } else {
            data = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (data != MAP_FAILED && g->len)
                memcpy(data, g->data, g->len);
        }
        if (data == MAP_FAILED)
            return -1;
        madvise(data, cap, MADV_HUGEPAGE); /* a hint: without THP, 4 KB pages */
        if (!g->mapped)
            free(g->data);
        g->data = data;
        g->cap = cap;
        g->mapped = 1;
        return 0;
    }
#endif
    char *data = realloc(g->data, cap);
    if (!data)
        return -1;
    g->data = data;
    g->cap = cap;
    return 0;
}

static int grow(Grow *g, const void *p, size_t n) {
    if (g->len + n > g->cap) {
        size_t cap = g->cap ? g->cap : 1 << 16;
        while (cap < g->len + n)
            cap *= 2;
        if (grow_to(g, cap) < 0)
            return -1;
    }
    if (n)
        memcpy(g->data + g->len, p, n);
    g->len += n;
    return 0;
}

static int block_get(PyObject *self, Py_buffer *view, int flags) {
    Grow *g = &((Block *)self)->memory;
    return PyBuffer_FillInfo(view, self, g->data ? g->data : (void *)"", (Py_ssize_t)g->len, 1,
                             flags);
}

static void block_dealloc(PyObject *self) {
    grow_free(&((Block *)self)->memory);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs block_procs = {block_get, NULL};

static PyTypeObject BlockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sluice.store._sqlite_read.Block",
    .tp_basicsize = sizeof(Block),
    .tp_dealloc = block_dealloc,
    .tp_as_buffer = &block_procs,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory the reader filled (read-only, through the buffer protocol).",
};

/* A Block owning g's memory (g is emptied), or NULL. */
static PyObject *block_of(Grow *g) {
    Block *b = PyObject_New(Block, &BlockType);
    if (!b)
        return NULL;
    b->memory = *g;
    memset(g, 0, sizeof(*g));
    return (PyObject *)b;
}

/* The distinct texts of a column (source ids, types, event names: few), each row a code. */
typedef struct {
    Grow text;          /* the distinct texts, one after another */
    size_t *at;         /* text offsets of each distinct text, and its length */
    int *len;
    uint64_t *hash;
    int32_t *slots;     /* open addressing: code + 1, 0 empty */
    int count, cap, n_slots;
    int32_t last;       /* the previous row's code (rows repeat it) */
} Distinct;

static uint64_t text_hash(const char *p, int n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static int distinct_grow(Distinct *d) {
    int n_slots = d->n_slots ? d->n_slots * 2 : 64;
    int32_t *slots = calloc((size_t)n_slots, sizeof(int32_t));
    if (!slots)
        return -1;
    for (int c = 0; c < d->count; c++) {
        size_t k = d->hash[c] & (size_t)(n_slots - 1);
        while (slots[k])
            k = (k + 1) & (size_t)(n_slots - 1);
        slots[k] = c + 1;
    }
    free(d->slots);
    d->slots = slots;
    d->n_slots = n_slots;
    return 0;
}

/* The code of text p (n bytes), added if new; -1 when out of memory. */
static int32_t distinct_code(Distinct *d, const char *p, int n) {
    if (d->last >= 0 && d->len[d->last] == n && memcmp(d->text.data + d->at[d->last], p, (size_t)n) == 0)
        return d->last;
    uint64_t h = text_hash(p, n);
    if ((d->count + 1) * 2 > d->n_slots && distinct_grow(d) < 0)
        return -1;
    size_t k = h & (size_t)(d->n_slots - 1);
    for (; d->slots[k]; k = (k + 1) & (size_t)(d->n_slots - 1)) {
        int c = d->slots[k] - 1;
        if (d->hash[c] == h && d->len[c] == n && memcmp(d->text.data + d->at[c], p, (size_t)n) == 0)
            return d->last = c;
    }
    if (d->count == d->cap) {
        int cap = d->cap ? d->cap * 2 : 16;
        size_t *at = realloc(d->at, (size_t)cap * sizeof(size_t));
        if (at)
            d->at = at;
        int *len = realloc(d->len, (size_t)cap * sizeof(int));
        if (len)
            d->len = len;
        uint64_t *hash = realloc(d->hash, (size_t)cap * sizeof(uint64_t));
        if (hash)
            d->hash = hash;
        if (!at || !len || !hash)
            return -1;
        d->cap = cap;
    }
    int c = d->count++;
    d->at[c] = d->text.len;
    d->len[c] = n;
    d->hash[c] = h;
    if (grow(&d->text, p, (size_t)n) < 0)
        return -1;
    d->slots[k] = c + 1;
    return d->last = c;
}

static void distinct_free(Distinct *d) {
    grow_free(&d->text);
    free(d->at);
    free(d->len);
    free(d->hash);
    free(d->slots);
}

/* What each column becomes: an int64 buffer, codes into distinct texts, or offsets + bytes. */
enum { AS_INT = 'i', AS_CODES = 'c', AS_BYTES = 'b' };

typedef struct {
    int as;
    Grow values;  /* int64 values, int32 codes, or int64 offsets (count + 1) */
    Grow bytes;   /* AS_BYTES: the values one after another */
    Distinct distinct;
} ColumnOut;

/* Step every row into the columns (no GIL); SQLITE_DONE, an SQLite code, -1 (no memory) or -2
   (a NULL where the column cannot hold one, or a value of another storage class). */
static int step_columns(Reader *r, ColumnOut *outs, Py_ssize_t *rows) {
    int rc;
    for (int c = 0; c < r->columns; c++)
        if (outs[c].as == AS_BYTES) {
            int64_t zero = 0;
            if (grow(&outs[c].values, &zero, sizeof zero) < 0)
                return -1;
        }
    while ((rc = sqlite3_step(r->stmt)) == SQLITE_ROW) {
        for (int c = 0; c < r->columns; c++) {
            ColumnOut *o = &outs[c];
            int type = sqlite3_column_type(r->stmt, c);
            if (o->as == AS_INT) {
                if (type != SQLITE_INTEGER)
                    return -2;
                int64_t v = sqlite3_column_int64(r->stmt, c);
                if (grow(&o->values, &v, sizeof v) < 0)
                    return -1;
            } else if (o->as == AS_CODES) {
                int32_t code = -1;
                if (type == SQLITE_TEXT) {
                    const char *p = (const char *)sqlite3_column_text(r->stmt, c);
                    if (!p)
                        return -1;
                    code = distinct_code(&o->distinct, p, sqlite3_column_bytes(r->stmt, c));
                    if (code < 0)
                        return -1;
                } else if (type != SQLITE_NULL) {
                    return -2;
                }
                if (grow(&o->values, &code, sizeof code) < 0)
                    return -1;
            } else {
                if (type != SQLITE_TEXT && type != SQLITE_BLOB)
                    return -2;
                const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_column_text(r->stmt, c)
                                                    : sqlite3_column_blob(r->stmt, c);
                int n = sqlite3_column_bytes(r->stmt, c);
                if ((!p && n) || grow(&o->bytes, p, (size_t)n) < 0)
                    return -1;
                int64_t end = (int64_t)o->bytes.len;
                if (grow(&o->values, &end, sizeof end) < 0)
                    return -1;
            }
        }
        (*rows)++;
    }
    return rc;
}

/* A column's result: a Block (ints), (texts, codes Block), or (offsets Block, bytes Block). */
static PyObject *column_result(Reader *r, ColumnOut *o) {
    if (o->as == AS_INT)
        return block_of(&o->values);
    if (o->as == AS_BYTES)
        return Py_BuildValue("(NN)", block_of(&o->values), block_of(&o->bytes));
    Distinct *d = &o->distinct;
    PyObject *texts = PyList_New(d->count);
    if (!texts)
        return NULL;
    for (int c = 0; c < d->count; c++) {
        PyObject *t = decoded_text(r, d->text.data + d->at[c], d->len[c]);
        if (!t) {
            Py_DECREF(texts);
            return NULL;
        }
        PyList_SET_ITEM(texts, c, t);
    }
    return Py_BuildValue("(NN)", texts, block_of(&o->values));
}

int columns_ready(void) { return PyType_Ready(&BlockType); }

/* The statement's rows (bound, not yet stepped) column by column as `kinds` says: see
   `Reader.read_columns`. Resets the statement. */
PyObject *stepped_columns(Reader *self, const char *kinds) {
    ColumnOut outs[MAX_COLUMNS];
    memset(outs, 0, sizeof(outs));
    for (int c = 0; c < self->columns; c++) {
        outs[c].as = kinds[c];
        outs[c].distinct.last = -1;
    }
    Py_ssize_t rows = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = step_columns(self, outs, &rows);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL, *columns = NULL;
    if (rc == -1)
        PyErr_NoMemory();
    else if (rc == -2)
        PyErr_SetString(PyExc_ValueError, "a value the column's kind cannot hold (NULL, or "
                                          "another storage class)");
    else if (rc != SQLITE_DONE)
        sqlite_error(self->db, rc);
    else if ((columns = PyTuple_New(self->columns)) != NULL) {
        int c = 0;
        for (; c < self->columns; c++) {
            PyObject *item = column_result(self, &outs[c]);
            if (!item)
                break;
            PyTuple_SET_ITEM(columns, c, item);
        }
        if (c == self->columns)
            result = Py_BuildValue("(nO)", rows, columns);
        Py_DECREF(columns);
    }
    sqlite3_reset(self->stmt);
    for (int c = 0; c < self->columns; c++) {
        grow_free(&outs[c].values);
        grow_free(&outs[c].bytes);
        distinct_free(&outs[c].distinct);
    }
    return result;
}

