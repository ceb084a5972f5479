/*
 * sluice.lake._distinct: how many distinct texts the first values of an Arrow string column
 * hold, up to a limit: the lake's choice of dictionary encoding (parquet.py).
 *
 * `pyarrow.compute.count_distinct` on each text column's first 1,000 values of each file cost
 * ~30 us a column (~0.2 s of CPU per 1,000,000 events in bench/lake.py, on the writer's
 * threads): it hashes every value into a memo table it builds anew. Here the values are hashed
 * (8 bytes at a time) into a small open-addressing table kept per thread, and counting stops
 * once the limit is passed (most text columns are ids, all distinct: ~limit values looked at,
 * not 1,000).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../_same_bytes.h"

#define SLOTS 4096 /* > 2x the most values asked of (parquet.DICTIONARY_SAMPLE) */

typedef struct {
    uint64_t hash;
    int32_t start, len;
    uint32_t call; /* the call that filled it: slots of earlier calls are empty */
} Slot;

/* A hash of n bytes, 8 at a time (a multiply and a shift a word). */
static uint64_t hash_of(const uint8_t *p, int32_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, p, (size_t)n);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 32;
    }
    return h * 0x9E3779B97F4A7C15ull;
}

PyDoc_STRVAR(distinct_doc,
"distinct(validity, offsets, data, offset, length, limit) -> int\n\n"
"The number of distinct non-null values of a string array's `length` values from `offset`\n"
"(its Arrow buffers: validity bitmap or None, int32 offsets, UTF-8 data), or `limit + 1`\n"
"once it passes `limit`. At most 2,000 values.");

static PyObject *distinct(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *validity_obj;
    Py_buffer offsets_view, data_view, validity_view = {0};
    Py_ssize_t offset, length, limit;
    if (!PyArg_ParseTuple(args, "Oy*y*nnn", &validity_obj, &offsets_view, &data_view, &offset,
                          &length, &limit))
        return NULL;
    PyObject *result = NULL;
    int has_validity = validity_obj != Py_None;
    if (has_validity && PyObject_GetBuffer(validity_obj, &validity_view, PyBUF_SIMPLE) < 0)
        goto done;
    if (offset < 0 || length < 0 || length > SLOTS / 2 ||
        (offset + length + 1) * (Py_ssize_t)sizeof(int32_t) > offsets_view.len ||
        (has_validity && (offset + length + 7) / 8 > validity_view.len)) {
        PyErr_SetString(PyExc_ValueError, "values out of the buffers' range");
        goto done;
    }
    const int32_t *offsets = (const int32_t *)offsets_view.buf + offset;
    const uint8_t *data = data_view.buf, *valid = has_validity ? validity_view.buf : NULL;
    for (Py_ssize_t i = 0; i <= length; i++) {
        if (offsets[i] < 0 || offsets[i] > data_view.len || (i && offsets[i] < offsets[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "offsets out of the data's range");
            goto done;
        }
    }
    static __thread Slot slots[SLOTS]; /* per thread: the writer calls this on two */
    static __thread uint32_t calls;
    if (++calls == 0) { /* wrapped: stamps of 2^32 calls ago would look current */
        memset(slots, 0, sizeof(slots));
        calls = 1;
    }
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < length && count <= limit; i++) {
        Py_ssize_t at = offset + i;
        if (valid && !(valid[at >> 3] & (1u << (at & 7))))
            continue;
        int32_t start = offsets[i], len = offsets[i + 1] - offsets[i];
        uint64_t hash = hash_of(data + start, len);
        for (size_t s = (size_t)(hash >> 52) & (SLOTS - 1);; s = (s + 1) & (SLOTS - 1)) {
            Slot *slot = &slots[s];
            if (slot->call != calls) {
                *slot = (Slot){hash, start, len, calls};
                count++;
                break;
            }
            if (slot->hash == hash && slot->len == len &&
                same_bytes((const char *)data + slot->start, (const char *)data + start, len))
                break;
        }
    }
    result = PyLong_FromSsize_t(count);
done:
    if (has_validity && validity_view.obj)
        PyBuffer_Release(&validity_view);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    return result;
}

static PyMethodDef methods[] = {
    {"distinct", distinct, METH_VARARGS, distinct_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_distinct",
    "Distinct texts among a string column's first values (see sluice.lake.parquet).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__distinct(void) { return PyModule_Create(&module); }
