/*
 * sluice.warehouse._group: a piece of the log sorted into the columnar planner's groups, in C.
 *
 * intake.py decides which events a chunk keeps and which group each joins (source, call,
 * track name) as `columnar.Chunk.add` does. In Python that costs a loop over every event
 * (~1.8 s of CPU per 1,000,000 events, a fifth of the lake's load); here it is two passes:
 *
 * `survey` looks at every event once: its source (numbered), whether its payload mentions
 * "Warehouses" (only those are decoded, in Python, for `integrations.Warehouses`) and whether
 * it is a track without a name (Python asks the payload). The payload scan runs without the
 * GIL.
 *
 * `group` then drops what Python decided to drop, and the repeated messageIds (per schema,
 * as `Chunk.add`: an id the schema already had, in the chunk or earlier in the piece), numbers
 * the groups in order of first appearance and puts the kept events in group order (log order
 * within a group: a counting sort), as Arrow buffers (seq, messageId) and a tuple of the
 * log's payloads a group, not copied.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { F_SEQ, F_SOURCE, F_MESSAGE_ID, F_TYPE, F_EVENT, F_RECEIVED, F_PAYLOAD, FIELDS };

static PyObject *field(PyObject *event, int i) { return PyTuple_GET_ITEM(event, i); }

/* Whether `e` is a `StoredEvent` as the passes read it (a payload of bytes, when `payload`). */
static int is_event(PyObject *e, int payload) {
    return PyTuple_Check(e) && PyTuple_GET_SIZE(e) >= FIELDS &&
           (!payload || PyBytes_Check(field(e, F_PAYLOAD))) &&
           PyUnicode_Check(field(e, F_MESSAGE_ID)) && PyLong_Check(field(e, F_SEQ));
}

static int not_events(void) {
    PyErr_SetString(PyExc_TypeError, "events must be StoredEvents");
    return -1;
}

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

static int is_track(PyObject *call) {
    return PyUnicode_Check(call) && PyUnicode_CompareWithASCIIString(call, "track") == 0;
}

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

PyDoc_STRVAR(survey_doc,
"survey(events) -> (sources, source_of, mentions, nameless)\n\n"
"The distinct source ids (in order of first appearance), each event's index in them (int32\n"
"buffer), and the indices of the events whose payload holds b'Warehouses' and of the tracks\n"
"without an event name (falsy `event`).");

static PyObject *survey(PyObject *self, PyObject *events) {
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

PyDoc_STRVAR(mentions_doc,
"mentions(offsets, data) -> list[int]\n\n"
"The indices of the texts of a large binary array (its int64 `offsets`, one more than texts,\n"
"and `data` buffers) that hold b'Warehouses' (as `survey` finds them in payloads).");

static PyObject *mentions_in(PyObject *self, PyObject *args) {
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

PyDoc_STRVAR(repeated_doc,
"repeated(schema, offsets, data) -> bytes\n\n"
"For each event, 1 where an earlier event of the same schema has the same messageId, else 0.\n"
"`schema`: an int32 buffer, each event's schema code (-1: the event is not counted, neither\n"
"repeating nor repeated); `offsets` (int64, one more than events) and `data`: the messageIds.\n"
"The first of each (schema, messageId) in log order is the one kept, as in `group`.");

static uint64_t id_hash(const unsigned char *p, int64_t n, int32_t schema) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uint32_t)schema; /* FNV-1a */
    for (int64_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static PyObject *repeated_ids(PyObject *self, PyObject *args) {
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

/* Drop the events whose messageId their schema already had; returns how many, or -1. */
static Py_ssize_t drop_repeated(PyObject **items, Py_ssize_t n, uint8_t *drop,
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

PyDoc_STRVAR(group_doc,
"group(events, source_of, keep, schema_of, seen, drop, names)\n"
"    -> (skipped, duplicates, aside, keys, counts, seq, offsets, data, payloads)\n\n"
"Drops the events of sources not in `keep` (one byte a source: 1 kept) and those at the\n"
"indices `drop`, then the repeated messageIds (`seen`: a set per schema, which grows;\n"
"`schema_of`: each source's schema index), and sorts the others into groups (source, call,\n"
"track name; `names`: index -> name for nameless tracks, or None). Returns how many were\n"
"skipped by source and repeated, the dropped events (log order), the groups' keys and sizes\n"
"(order of first appearance), and the kept events in group order: seq (int64) and messageId\n"
"(int32 offsets, UTF-8 data) buffers, and the payloads (a tuple a group).");

static PyObject *group(PyObject *self, PyObject *args) {
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
    Py_ssize_t repeated = drop_repeated(items, n, drop, source_of, schema_of, seen);
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

static PyMethodDef methods[] = {
    {"survey", survey, METH_O, survey_doc},
    {"group", group, METH_VARARGS, group_doc},
    {"mentions", mentions_in, METH_VARARGS, mentions_doc},
    {"repeated", repeated_ids, METH_VARARGS, repeated_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_group",
    "A piece of the log sorted into the columnar planner's groups (see sluice.warehouse.intake).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__group(void) { return PyModule_Create(&module); }
