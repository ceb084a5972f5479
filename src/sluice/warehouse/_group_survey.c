/*
 * The grouping's pass over the payloads (see _group.c): `survey` numbers each event's source,
 * finds the nameless tracks and the payloads that mention "Warehouses"; `mentions` finds the
 * latter in a column chunk's buffers.
 */
#include "_group.h"

/* Whether the text holds "Warehouses" (as `b"Warehouses" in payload`). */
static int mentions(const char *p, Py_ssize_t n) {
    const char *end = p + n;
    while (end - p >= 10) {
        const char *w = memchr(p, 'W', (size_t)(end - p - 9));
        if (!w)
            return 0;
        if (memcmp(w + 1, "arehouses", 9) == 0)
            return 1;
        p = w + 1;
    }
    return 0;
}

PyObject *group_survey(PyObject *self, PyObject *events) {
    (void)self;
    PyObject *fast = PySequence_Fast(events, "events must be a sequence"), *result = NULL;
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **items = PySequence_Fast_ITEMS(fast);
    PyObject *codes = PyDict_New(), *sources = PyList_New(0), *nameless = PyList_New(0);
    PyObject *found = PyList_New(0);
    PyObject *source_of = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int32_t));
    const char **texts = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    Py_ssize_t *sizes = malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    uint8_t *hits = calloc((size_t)(n ? n : 1), 1);
    if (!codes || !sources || !nameless || !found || !source_of || !texts || !sizes || !hits) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    int32_t *of = (int32_t *)PyBytes_AS_STRING(source_of);
    PyObject *last = NULL;
    int32_t last_code = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = items[i];
        if (!is_event(e, 1)) {
            not_events();
            goto done;
        }
        PyObject *source = field(e, F_SOURCE);
        if (source != last) {
            PyObject *code = PyDict_GetItemWithError(codes, source);
            if (code) {
                last_code = (int32_t)PyLong_AsLong(code);
            } else {
                if (PyErr_Occurred())
                    goto done;
                last_code = (int32_t)PyList_GET_SIZE(sources);
                PyObject *number = PyLong_FromLong(last_code);
                int failed = !number || PyDict_SetItem(codes, source, number) < 0 ||
                             PyList_Append(sources, source) < 0;
                Py_XDECREF(number);
                if (failed)
                    goto done;
            }
            last = source;
        }
        of[i] = last_code;
        if (is_track(field(e, F_TYPE))) {
            int no_name = PyObject_Not(field(e, F_EVENT));
            if (no_name < 0)
                goto done;
            if (no_name) {
                PyObject *index = PyLong_FromSsize_t(i);
                int failed = !index || PyList_Append(nameless, index) < 0;
                Py_XDECREF(index);
                if (failed)
                    goto done;
            }
        }
        texts[i] = PyBytes_AS_STRING(field(e, F_PAYLOAD));
        sizes[i] = PyBytes_GET_SIZE(field(e, F_PAYLOAD));
    }
    Py_BEGIN_ALLOW_THREADS /* the list keeps the payloads alive, unchanged */
    for (Py_ssize_t i = 0; i < n; i++)
        hits[i] = (uint8_t)mentions(texts[i], sizes[i]);
    Py_END_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!hits[i])
            continue;
        PyObject *index = PyLong_FromSsize_t(i);
        int failed = !index || PyList_Append(found, index) < 0;
        Py_XDECREF(index);
        if (failed)
            goto done;
    }
    result = Py_BuildValue("(OOOO)", sources, source_of, found, nameless);
done:
    Py_XDECREF(codes);
    Py_XDECREF(sources);
    Py_XDECREF(nameless);
    Py_XDECREF(found);
    Py_XDECREF(source_of);
    free((void *)texts);
    free(sizes);
    free(hits);
    Py_DECREF(fast);
    return result;
}

PyObject *group_mentions(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer offsets_view, data_view;
    if (!PyArg_ParseTuple(args, "y*y*", &offsets_view, &data_view))
        return NULL;
    PyObject *found = NULL;
    Py_ssize_t n = offsets_view.len / (Py_ssize_t)sizeof(int64_t) - 1;
    const int64_t *offsets = offsets_view.buf;
    uint8_t *hits = calloc((size_t)(n > 0 ? n : 1), 1);
    if (!hits) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (offsets[i] < 0 || offsets[i + 1] < offsets[i] || offsets[i + 1] > data_view.len) {
            PyErr_SetString(PyExc_ValueError, "offsets point outside the data");
            goto done;
        }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        hits[i] = (uint8_t)mentions((const char *)data_view.buf + offsets[i],
                                    (Py_ssize_t)(offsets[i + 1] - offsets[i]));
    Py_END_ALLOW_THREADS
    found = PyList_New(0);
    for (Py_ssize_t i = 0; found && i < n; i++) {
        if (!hits[i])
            continue;
        PyObject *index = PyLong_FromSsize_t(i);
        if (!index || PyList_Append(found, index) < 0)
            Py_CLEAR(found);
        Py_XDECREF(index);
    }
done:
    free(hits);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&data_view);
    return found;
}
