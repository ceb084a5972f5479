/*
 * What the grouping's parts share: _group.c (the module: its functions' docs and table),
 * _group_survey.c (the pass over the payloads), _group_repeated.c (the repeated messageIds) and
 * _group_order.c (the events numbered into groups and put in group order). Here: a
 * `StoredEvent` as the passes read it, and the functions one part calls in another.
 */
#ifndef SLUICE_GROUP_H
#define SLUICE_GROUP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The events' fields and their checks, read for every event in the passes' loops: inline here,
   as they were in one file. */
enum { F_SEQ, F_SOURCE, F_MESSAGE_ID, F_TYPE, F_EVENT, F_RECEIVED, F_PAYLOAD, FIELDS };

static inline PyObject *field(PyObject *event, int i) { return PyTuple_GET_ITEM(event, i); }

/* Whether `e` is a `StoredEvent` as the passes read it (a payload of bytes, when `payload`). */
static inline int is_event(PyObject *e, int payload) {
    return PyTuple_Check(e) && PyTuple_GET_SIZE(e) >= FIELDS &&
           (!payload || PyBytes_Check(field(e, F_PAYLOAD))) &&
           PyUnicode_Check(field(e, F_MESSAGE_ID)) && PyLong_Check(field(e, F_SEQ));
}

static inline int not_events(void) {
    PyErr_SetString(PyExc_TypeError, "events must be StoredEvents");
    return -1;
}

static inline int is_track(PyObject *call) {
    return PyUnicode_Check(call) && PyUnicode_CompareWithASCIIString(call, "track") == 0;
}

/* The module's functions (their docs: _group.c), and `group`'s drop of repeated messageIds. */

/* _group_survey.c */
PyObject *group_survey(PyObject *self, PyObject *events);
PyObject *group_mentions(PyObject *self, PyObject *args);

/* _group_repeated.c */
PyObject *group_repeated(PyObject *self, PyObject *args);
Py_ssize_t group_drop_repeated(PyObject **items, Py_ssize_t n, uint8_t *drop,
                               const int32_t *source_of, PyObject *schema_of, PyObject *seen);

/* _group_order.c */
PyObject *group_events(PyObject *self, PyObject *args);

#endif
