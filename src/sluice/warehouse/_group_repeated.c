/*
 * The grouping's repeated messageIds (see _group.c): `repeated` over a column chunk's buffers
 * (its own hash table, per schema), and `group`'s drop of the events whose messageId their
 * schema already had (the Python sets it is given, which grow).
 */
#include "_group.h"

static uint64_t id_hash(const unsigned char *p, int64_t n, int32_t schema) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uint32_t)schema; /* FNV-1a */
    for (int64_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

PyObject *group_repeated(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer schema_view, offsets_view, data_view;
    if (!PyArg_ParseTuple(args, "y*y*y*", &schema_view, &offsets_view, &data_view))
        return NULL;
    PyObject *result = NULL;
    int32_t *slots = NULL;
    Py_ssize_t n = schema_view.len / (Py_ssize_t)sizeof(int32_t);
    const int32_t *schema = schema_view.buf;
    const int64_t *offsets = offsets_view.buf;
    const unsigned char *data = data_view.buf;
    if (offsets_view.len / (Py_ssize_t)sizeof(int64_t) != n + 1) {
        PyErr_SetString(PyExc_ValueError, "offsets must be one more than events");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (offsets[i] < 0 || offsets[i + 1] < offsets[i] || offsets[i + 1] > data_view.len) {
            PyErr_SetString(PyExc_ValueError, "offsets point outside the data");
            goto done;
        }
    size_t size = 64;
    while (size < (size_t)n * 2)
        size *= 2;
    slots = calloc(size, sizeof(int32_t)); /* event index + 1; 0: empty */
    result = PyBytes_FromStringAndSize(NULL, n);
    if (!slots || !result) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        Py_CLEAR(result);
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = 0;
        if (schema[i] < 0)
            continue;
        const unsigned char *id = data + offsets[i];
        int64_t len = offsets[i + 1] - offsets[i];
        size_t k = (size_t)id_hash(id, len, schema[i]) & (size - 1);
        for (;; k = (k + 1) & (size - 1)) {
            int32_t j = slots[k] - 1;
            if (j < 0) {
                slots[k] = (int32_t)i + 1;
                break;
            }
            if (schema[j] == schema[i] && offsets[j + 1] - offsets[j] == len &&
                memcmp(data + offsets[j], id, (size_t)len) == 0) {
                out[i] = 1;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
done:
    free(slots);
    PyBuffer_Release(&schema_view);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    return result;
}

/* Drop the events whose messageId their schema already had; returns how many, or -1. */
Py_ssize_t group_drop_repeated(PyObject **items, Py_ssize_t n, uint8_t *drop,
                               const int32_t *source_of, PyObject *schema_of, PyObject *seen) {
    Py_ssize_t repeated = 0, n_sources = PyList_GET_SIZE(schema_of);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (drop[i])
            continue;
        if (source_of[i] < 0 || source_of[i] >= n_sources) {
            PyErr_SetString(PyExc_ValueError, "a source index out of range");
            return -1;
        }
        Py_ssize_t schema = PyLong_AsSsize_t(PyList_GET_ITEM(schema_of, source_of[i]));
        if (schema < 0 || schema >= PyList_GET_SIZE(seen)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a schema index out of range");
            return -1;
        }
        PyObject *known = PyList_GET_ITEM(seen, schema);
        if (!PySet_Check(known)) {
            PyErr_SetString(PyExc_TypeError, "seen must hold sets");
            return -1;
        }
        Py_ssize_t before = PySet_GET_SIZE(known); /* one hash lookup: added, or already in */
        if (PySet_Add(known, field(items[i], F_MESSAGE_ID)) < 0)
            return -1;
        if (PySet_GET_SIZE(known) == before) {
            drop[i] = 1;
            repeated++;
        }
    }
    return repeated;
}
