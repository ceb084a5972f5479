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
 *
 * This file is the module and the scan's loop over the events; _scan_json.c walks each event's
 * JSON, _scan_outputs.c types its values into the output columns, _pool.c recycles their memory
 * (_scan.h: what they share).
 */
#include "_scan.h"

static int use_fast = 1; /* the fast paths (_scan.h), `_scan.fast()` */

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
    outputs = new_outputs(outs, n_outs, count);
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
        uint8_t bit = (uint8_t)(1u << (row & 7)); /* the row's in the bitmaps */
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
        if (emit_row(outs, outputs, n_outs, row, start, size, s.irregular,
                     s.fast ? &minutes : NULL, flag_bits) < 0)
            failed = 1;
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

PyDoc_STRVAR(read_gather_doc,
"read_gather(offsets, data, at, tree, paths, outputs) -> (columns, flag, ok, irregular)\n\n"
"As `read`, over the texts at the indices `at` (int32 buffer) of a large binary array (its\n"
"int64 `offsets` and `data` buffers): a group's payloads where the log's columns hold them.");

static PyObject *scan_read_gather(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer offsets_view, data_view, at_view;
    PyObject *spec, *out_spec, *result = NULL;
    int paths;
    if (!PyArg_ParseTuple(args, "y*y*y*O!iO!", &offsets_view, &data_view, &at_view,
                          &PyList_Type, &spec, &paths, &PyList_Type, &out_spec))
        return NULL;
    Py_ssize_t count = at_view.len / (Py_ssize_t)sizeof(int32_t);
    Py_ssize_t n_offsets = offsets_view.len / (Py_ssize_t)sizeof(int64_t);
    const char **texts = calloc((size_t)(count ? count : 1), sizeof(char *));
    Py_ssize_t *sizes = calloc((size_t)(count ? count : 1), sizeof(Py_ssize_t));
    if (!texts || !sizes) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *offsets = offsets_view.buf;
    const int32_t *at = at_view.buf;
    for (Py_ssize_t row = 0; row < count; row++) {
        int32_t i = at[row];
        int64_t lo = i >= 0 && i + 1 < n_offsets ? offsets[i] : -1;
        int64_t hi = lo >= 0 ? offsets[i + 1] : -1;
        if (lo < 0 || hi < lo || hi > data_view.len) {
            PyErr_SetString(PyExc_ValueError, "an index or offset points outside the data");
            goto done;
        }
        texts[row] = (const char *)data_view.buf + lo;
        sizes[row] = (Py_ssize_t)(hi - lo);
    }
    result = scan_texts(texts, sizes, count, spec, paths, out_spec);
done:
    free((void *)texts);
    free(sizes);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    PyBuffer_Release(&at_view);
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
    {"read_gather", scan_read_gather, METH_VARARGS, read_gather_doc},
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
