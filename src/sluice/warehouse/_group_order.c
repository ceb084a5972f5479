/*
 * The grouping's `group` pass (see _group.c): the events dropped (by source, by Python's
 * choice, repeated messageIds: _group_repeated.c), the others numbered into groups in order of
 * first appearance and put in group order by a counting sort, as Arrow buffers and a tuple of
 * payloads a group.
 */
#include "_group.h"

/* The events as a fast sequence of tuples (`StoredEvent`s, their payloads not looked at:
   `group` only stores them, and `survey` checks each as it reads it, which spares a pass over
   every payload's header, ~1 KB apart), or NULL with an error set. */
static PyObject *events_of(PyObject *events) {
    PyObject *fast = PySequence_Fast(events, "events must be a sequence");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_event(items[i], 0)) {
            not_events();
            Py_DECREF(fast);
            return NULL;
        }
    }
    return fast;
}

#define RECENT 64

typedef struct {
    PyObject *source, *call, *name;
    int32_t code;
} Recent;

/* The groups' keys and each kept event's group (-1: dropped), numbered in order of first
   appearance; `names` gives nameless tracks theirs. Returns the number of groups, or -1. */
static Py_ssize_t number_groups(PyObject **items, Py_ssize_t n, const uint8_t *drop,
                                PyObject *names, PyObject *keys, int32_t *code) {
    PyObject *numbers = PyDict_New();
    Recent recent[RECENT] = {{NULL, NULL, NULL, 0}}; /* the events keep these objects alive */
    if (!numbers)
        return -1;
    Py_ssize_t count = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        code[i] = -1;
        if (drop[i])
            continue;
        PyObject *e = items[i], *call = field(e, F_TYPE), *name = Py_None;
        if (is_track(call)) {
            name = field(e, F_EVENT);
            if (names != Py_None) {
                PyObject *index = PyLong_FromSsize_t(i);
                if (!index)
                    goto done;
                PyObject *given = PyDict_GetItemWithError(names, index);
                Py_DECREF(index);
                if (given)
                    name = given;
                else if (PyErr_Occurred())
                    goto done;
            }
        }
        /* The same three objects as a recent event: its group (no key tuple to make). */
        PyObject *source = field(e, F_SOURCE);
        size_t slot = (((uintptr_t)source >> 4) ^ ((uintptr_t)call >> 6) ^
                       ((uintptr_t)name >> 3)) % RECENT;
        if (recent[slot].source == source && recent[slot].call == call &&
            recent[slot].name == name) {
            code[i] = recent[slot].code;
            continue;
        }
        PyObject *key = PyTuple_Pack(3, source, call, name);
        if (!key)
            goto done;
        PyObject *number = PyDict_GetItemWithError(numbers, key);
        if (number) {
            code[i] = (int32_t)PyLong_AsLong(number);
        } else if (PyErr_Occurred()) {
            Py_DECREF(key);
            goto done;
        } else {
            code[i] = (int32_t)PyList_GET_SIZE(keys);
            number = PyLong_FromLong(code[i]);
            int failed = !number || PyDict_SetItem(numbers, key, number) < 0 ||
                         PyList_Append(keys, key) < 0;
            Py_XDECREF(number);
            if (failed) {
                Py_DECREF(key);
                goto done;
            }
        }
        Py_DECREF(key);
        recent[slot] = (Recent){source, call, name, code[i]};
    }
    count = PyList_GET_SIZE(keys);
done:
    Py_DECREF(numbers);
    return count;
}

PyObject *group_events(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *events, *schema_of, *seen, *dropped, *names, *fast, *result = NULL;
    Py_buffer source_view, keep_view;
    if (!PyArg_ParseTuple(args, "Oy*y*O!O!O!O", &events, &source_view, &keep_view,
                          &PyList_Type, &schema_of, &PyList_Type, &seen, &PyList_Type, &dropped,
                          &names))
        return NULL;
    fast = events_of(events);
    Py_ssize_t n = fast ? PySequence_Fast_GET_SIZE(fast) : 0, skipped = 0;
    PyObject **items = fast ? PySequence_Fast_ITEMS(fast) : NULL;
    PyObject *keys = PyList_New(0), *aside = PyList_New(0), *counts = NULL, *payloads = NULL;
    PyObject *seq = NULL, *offsets = NULL, *data = NULL;
    uint8_t *drop = calloc((size_t)(n ? n : 1), 1);
    int32_t *code = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    Py_ssize_t *start = NULL, *first = NULL;
    char *text = NULL;
    const int32_t *source_of = source_view.buf;
    const uint8_t *keep = keep_view.buf;
    if (!fast || !keys || !aside || !drop || !code) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    if (source_view.len != n * (Py_ssize_t)sizeof(int32_t) || (names != Py_None &&
                                                                 !PyDict_Check(names))) {
        PyErr_SetString(PyExc_ValueError, "source_of must have one int32 an event");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (source_of[i] < 0 || source_of[i] >= keep_view.len) {
            PyErr_SetString(PyExc_ValueError, "a source index out of range");
            goto done;
        }
        if (!keep[source_of[i]]) {
            drop[i] = 1;
            skipped++;
        }
    }
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(dropped); k++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyList_GET_ITEM(dropped, k));
        if (i < 0 || i >= n) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_IndexError, "a dropped index out of range");
            goto done;
        }
        drop[i] = 1;
    }
    Py_ssize_t repeated = group_drop_repeated(items, n, drop, source_of, schema_of, seen);
    if (repeated < 0)
        goto done;
    Py_ssize_t groups = number_groups(items, n, drop, names, keys, code);
    if (groups < 0)
        goto done;
    start = calloc((size_t)groups + 1, sizeof(Py_ssize_t));
    counts = PyList_New(groups);
    if (!start || !counts) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t kept = 0, text_len = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (code[i] >= 0) {
            start[code[i] + 1]++;
            kept++;
        } else if (PyList_Append(aside, items[i]) < 0) {
            goto done;
        }
    }
    for (Py_ssize_t g = 0; g < groups; g++) {
        PyList_SET_ITEM(counts, g, PyLong_FromSsize_t(start[g + 1]));
        if (!PyList_GET_ITEM(counts, g))
            goto done;
        start[g + 1] += start[g];
    }
    payloads = PyList_New(groups); /* a tuple a group: not one to be sliced in Python */
    seq = PyBytes_FromStringAndSize(NULL, kept * (Py_ssize_t)sizeof(int64_t));
    offsets = PyBytes_FromStringAndSize(NULL, (kept + 1) * (Py_ssize_t)sizeof(int32_t));
    if (!payloads || !seq || !offsets)
        goto done;
    for (Py_ssize_t g = 0; g < groups; g++) {
        PyObject *tuple = PyTuple_New(start[g + 1] - start[g]);
        if (!tuple)
            goto done;
        PyList_SET_ITEM(payloads, g, tuple);
    }
    first = malloc(sizeof(Py_ssize_t) * (size_t)(groups ? groups : 1));
    if (!first) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(first, start, sizeof(Py_ssize_t) * (size_t)groups);
    int64_t *seqs = (int64_t *)PyBytes_AS_STRING(seq);
    int32_t *offset = (int32_t *)PyBytes_AS_STRING(offsets);
    const char **ids = malloc(sizeof(char *) * (size_t)(kept ? kept : 1));
    Py_ssize_t *id_sizes = malloc(sizeof(Py_ssize_t) * (size_t)(kept ? kept : 1));
    if (!ids || !id_sizes) {
        free((void *)ids);
        free(id_sizes);
        PyErr_NoMemory();
        goto done;
    }
    int failed = 0;
    for (Py_ssize_t i = 0; i < n && !failed; i++) { /* stable: log order within a group */
        if (code[i] < 0)
            continue;
        Py_ssize_t at = start[code[i]]++;
        PyObject *e = items[i];
        seqs[at] = PyLong_AsLongLong(field(e, F_SEQ));
        ids[at] = PyUnicode_AsUTF8AndSize(field(e, F_MESSAGE_ID), &id_sizes[at]);
        failed = (seqs[at] == -1 && PyErr_Occurred()) || !ids[at];
        text_len += failed ? 0 : id_sizes[at];
        Py_INCREF(field(e, F_PAYLOAD));
        PyTuple_SET_ITEM(PyList_GET_ITEM(payloads, code[i]), at - first[code[i]],
                         field(e, F_PAYLOAD));
    }
    if (!failed && text_len > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "messageIds too long for int32 offsets");
        failed = 1;
    }
    if (!failed && (text = malloc((size_t)(text_len ? text_len : 1))) == NULL) {
        PyErr_NoMemory();
        failed = 1;
    }
    if (!failed) {
        Py_ssize_t len = 0;
        offset[0] = 0;
        for (Py_ssize_t k = 0; k < kept; k++) {
            memcpy(text + len, ids[k], (size_t)id_sizes[k]);
            len += id_sizes[k];
            offset[k + 1] = (int32_t)len;
        }
        data = PyBytes_FromStringAndSize(text, len);
    }
    free((void *)ids);
    free(id_sizes);
    if (!data)
        goto done;
    result = Py_BuildValue("(nnOOOOOOO)", skipped, repeated, aside, keys, counts, seq, offsets,
                           data, payloads);
done:
    Py_XDECREF(keys);
    Py_XDECREF(aside);
    Py_XDECREF(counts);
    Py_XDECREF(payloads);
    Py_XDECREF(seq);
    Py_XDECREF(offsets);
    Py_XDECREF(data);
    Py_XDECREF(fast);
    free(drop);
    free(code);
    free(start);
    free(first);
    free(text);
    PyBuffer_Release(&source_view);
    PyBuffer_Release(&keep_view);
    return result;
}
