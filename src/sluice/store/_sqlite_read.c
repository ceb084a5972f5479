/*
 * sluice.store._sqlite_read: the SQLite log read in C, for `SqliteStore.read_after`.
 *
 * Python's sqlite3 module spends ~3.5 us of CPU per 1 KB event (this VM) reading the log: it
 * releases and retakes the GIL around every row's step, makes a row tuple that the store then
 * copies into a `StoredEvent` in Python, and the millions of container objects keep CPython's
 * cyclic GC walking them. Consumers read the whole log (delivery, warehouses, the lake, the
 * archive), so that cost came to as much as the lake's entire load (docs/architecture.md).
 *
 * Here a `Reader` holds its own connection (kept from writing) and prepared statement and makes each row
 * as it is stepped, straight from SQLite's values, as the caller's tuple type (a NamedTuple):
 * each value converted as the sqlite3 module converts it by default (INTEGER int, REAL float,
 * TEXT str decoded as UTF-8 (bad bytes as U+FFFD, counted), BLOB bytes, NULL None), texts repeated row after row (source ids,
 * types, event names) shared as one object, and the rows left untracked by the cyclic GC (their
 * values cannot form cycles; CPython untracks plain tuples of such values itself, at their
 * first collection, but not NamedTuples). The GIL is let go every few hundred rows, as Python
 * code would be made to, not around every row.
 *
 * `read_columns` reads the same rows column by column instead, without the GIL and without a
 * Python object per value (_sqlite_columns.c), for consumers that work on columns (the lake).
 *
 * The connection must be opened by the same SQLite library as Python's (store/sqlite_read.py
 * checks it): two copies of SQLite in one process break each other's POSIX locks.
 */
#include "_sqlite_read.h"
#include <structmember.h>

#define SHARED 8 /* per column: the last texts made, reused when the next row repeats one */
#define YIELD_ROWS 256 /* rows stepped with the GIL held between two chances for other threads */

typedef struct {
    PyObject *text[SHARED];
    int next;
} Shared;

/* A TEXT value as str. One that is not UTF-8 (only another writer can put one in the log) is
 * read with U+FFFD in place of its bad bytes, as the Python path reads it, and counted in
 * `replaced` (store/sqlite_read.py warns): it must not stop the log's consumers there. */
PyObject *decoded_text(Reader *r, const char *p, Py_ssize_t n) {
    PyObject *t = PyUnicode_DecodeUTF8(p, n, NULL);
    if (t || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        return t;
    PyErr_Clear();
    r->replaced++;
    return PyUnicode_DecodeUTF8(p, n, "replace");
}

/* A TEXT value as str, the object of a recent row when it has the same bytes. */
static PyObject *text_value(Reader *r, Shared *shared, const char *p, int n) {
    for (int k = 0; k < SHARED; k++) {
        PyObject *t = shared->text[k];
        if (t && PyUnicode_IS_COMPACT_ASCII(t) && PyUnicode_GET_LENGTH(t) == n &&
            memcmp(PyUnicode_DATA(t), p, (size_t)n) == 0) {
            Py_INCREF(t);
            return t;
        }
    }
    PyObject *t = decoded_text(r, p, n);
    if (!t)
        return NULL;
    Py_XSETREF(shared->text[shared->next], Py_NewRef(t));
    shared->next = (shared->next + 1) % SHARED;
    return t;
}

/* Column `c` of the current row, as the sqlite3 module converts it by default. */
static PyObject *value_object(Reader *r, int c, Shared *shared) {
    sqlite3_stmt *stmt = r->stmt;
    switch (sqlite3_column_type(stmt, c)) {
    case SQLITE_INTEGER:
        return PyLong_FromLongLong(sqlite3_column_int64(stmt, c));
    case SQLITE_FLOAT:
        return PyFloat_FromDouble(sqlite3_column_double(stmt, c));
    case SQLITE_TEXT: {
        const char *p = (const char *)sqlite3_column_text(stmt, c);
        int n = sqlite3_column_bytes(stmt, c);
        if (!p)
            return PyErr_NoMemory();
        return text_value(r, shared, p, n);
    }
    case SQLITE_BLOB: {
        const void *p = sqlite3_column_blob(stmt, c);
        int n = sqlite3_column_bytes(stmt, c);
        if (!p && n)
            return PyErr_NoMemory();
        return PyBytes_FromStringAndSize(p, n);
    }
    default:
        Py_RETURN_NONE;
    }
}

/* The current row as a `row_type` tuple, untracked by the GC, appended to `list`. */
static int append_row(Reader *r, PyObject *list, PyTypeObject *row_type, Shared *shared) {
    PyObject *row = row_type->tp_alloc(row_type, r->columns);
    if (!row)
        return -1;
    for (int c = 0; c < r->columns; c++) {
        PyObject *item = value_object(r, c, &shared[c]);
        if (!item) {
            Py_DECREF(row); /* the items not set are NULL: tuple dealloc skips them */
            return -1;
        }
        PyTuple_SET_ITEM(row, c, item);
    }
    if (PyObject_GC_IsTracked(row))
        PyObject_GC_UnTrack(row); /* ints, floats, strs, bytes, None: no cycles */
    int failed = PyList_Append(list, row);
    Py_DECREF(row);
    return failed;
}

PyObject *sqlite_error(sqlite3 *db, int rc) {
    PyErr_Format(PyExc_OSError, "sqlite: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return NULL;
}

/* The statement reset, with `params` (ints) bound in order; -1 with an error set. */
static int bind(Reader *self, PyObject *params) {
    int rc = sqlite3_reset(self->stmt);
    if (rc == SQLITE_OK)
        rc = sqlite3_clear_bindings(self->stmt);
    if (rc != SQLITE_OK) {
        sqlite_error(self->db, rc);
        return -1;
    }
    if (PyTuple_GET_SIZE(params) != sqlite3_bind_parameter_count(self->stmt)) {
        PyErr_SetString(PyExc_ValueError, "params must give each parameter of the query");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(params); i++) {
        long long value = PyLong_AsLongLong(PyTuple_GET_ITEM(params, i));
        if (value == -1 && PyErr_Occurred())
            return -1;
        rc = sqlite3_bind_int64(self->stmt, (int)i + 1, value);
        if (rc != SQLITE_OK) {
            sqlite_error(self->db, rc);
            return -1;
        }
    }
    return 0;
}

static int Reader_init(Reader *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"path", "sql", "timeout_ms", NULL};
    const char *path, *sql;
    int timeout_ms = 30000;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ss|i", names, &path, &sql, &timeout_ms))
        return -1;
    if (self->db)
        return 0;
    /* Opened as the store's own connection is (read-write, so that the WAL's recovery after a
       crash and its shared index work as they do for it), then kept from writing: query_only. */
    int rc = sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(self->db, timeout_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(self->db, "PRAGMA query_only = ON", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &self->stmt, NULL);
    if (rc != SQLITE_OK) {
        sqlite_error(self->db, rc);
        sqlite3_close_v2(self->db);
        self->db = NULL;
        return -1;
    }
    self->columns = sqlite3_column_count(self->stmt);
    if (self->columns < 1 || self->columns > MAX_COLUMNS) {
        PyErr_SetString(PyExc_ValueError, "the query must return 1 to 16 columns");
        sqlite3_finalize(self->stmt);
        sqlite3_close_v2(self->db);
        self->stmt = NULL;
        self->db = NULL;
        return -1;
    }
    return 0;
}

static void close_reader(Reader *self) {
    if (self->stmt)
        sqlite3_finalize(self->stmt);
    if (self->db)
        sqlite3_close_v2(self->db);
    self->stmt = NULL;
    self->db = NULL;
}

static void Reader_dealloc(Reader *self) {
    close_reader(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(read_doc,
"read(params, row_type) -> list\n\n"
"The query's rows for `params` (a tuple of ints bound in order), each a `row_type` (a tuple\n"
"subclass, such as a NamedTuple, of as many fields as the query has columns). Not thread-safe:\n"
"one caller at a time.");

static PyObject *Reader_read(Reader *self, PyObject *args) {
    PyObject *params;
    PyTypeObject *row_type;
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &params, &PyType_Type, &row_type))
        return NULL;
    if (!self->stmt) {
        PyErr_SetString(PyExc_ValueError, "the reader is closed");
        return NULL;
    }
    if (!PyType_IsSubtype(row_type, &PyTuple_Type) || row_type->tp_dictoffset != 0) {
        PyErr_SetString(PyExc_TypeError, "row_type must be a tuple subclass without a dict");
        return NULL;
    }
    if (bind(self, params) < 0)
        return NULL;
    int rc;
    PyObject *list = PyList_New(0);
    Shared shared[MAX_COLUMNS];
    memset(shared, 0, sizeof(shared));
    int failed = !list;
    for (Py_ssize_t rows = 0; !failed; rows++) {
        /* SQLite's work without the GIL, a few hundred rows at a time: the rows' objects
           are made as they are stepped (one copy of each value), and other threads run */
        if (rows % YIELD_ROWS == 0) {
            Py_BEGIN_ALLOW_THREADS
            rc = sqlite3_step(self->stmt);
            Py_END_ALLOW_THREADS
        } else {
            rc = sqlite3_step(self->stmt);
        }
        if (rc != SQLITE_ROW)
            break;
        failed = append_row(self, list, row_type, shared) < 0;
    }
    if (!failed && rc != SQLITE_DONE) {
        sqlite_error(self->db, rc);
        failed = 1;
    }
    sqlite3_reset(self->stmt); /* ends the read transaction: the snapshot is let go */
    for (int c = 0; c < MAX_COLUMNS; c++)
        for (int k = 0; k < SHARED; k++)
            Py_XDECREF(shared[c].text[k]);
    if (failed) {
        Py_XDECREF(list);
        return NULL;
    }
    return list;
}

PyDoc_STRVAR(read_columns_doc,
"read_columns(params, kinds) -> (count, columns)\n\n"
"The query's rows for `params` column by column, each as `kinds` (one letter a column) says:\n"
"'i' an int64 buffer; 'c' (texts, int32 codes: -1 for NULL), the distinct texts in order of\n"
"first appearance; 'b' (int64 offsets, count + 1 of them, and the bytes), TEXT or BLOB values\n"
"one after another. Buffers are read-only objects of the buffer protocol. Steps without the\n"
"GIL; ValueError for a NULL or a value of another class than the column's kind allows.");

static PyObject *Reader_read_columns(Reader *self, PyObject *args) {
    PyObject *params;
    const char *kinds;
    if (!PyArg_ParseTuple(args, "O!s", &PyTuple_Type, &params, &kinds))
        return NULL;
    if (!self->stmt) {
        PyErr_SetString(PyExc_ValueError, "the reader is closed");
        return NULL;
    }
    if ((int)strlen(kinds) != self->columns || strspn(kinds, "icb") != strlen(kinds)) {
        PyErr_SetString(PyExc_ValueError, "kinds must give 'i', 'c' or 'b' for each column");
        return NULL;
    }
    if (bind(self, params) < 0)
        return NULL;
    return stepped_columns(self, kinds);
}

static PyObject *Reader_close(Reader *self, PyObject *unused) {
    (void)unused;
    close_reader(self);
    Py_RETURN_NONE;
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)Reader_read, METH_VARARGS, read_doc},
    {"read_columns", (PyCFunction)Reader_read_columns, METH_VARARGS, read_columns_doc},
    {"close", (PyCFunction)Reader_close, METH_NOARGS, "Close the connection (idempotent)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef reader_members[] = {
    {"replaced", T_LONGLONG, offsetof(Reader, replaced), READONLY,
     "Texts read so far that were not UTF-8 (read with U+FFFD in place of their bad bytes)."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sluice.store._sqlite_read.Reader",
    .tp_doc = PyDoc_STR("Reader(path, sql, timeout_ms=30000): one connection (query_only) and "
                        "one prepared query over a SQLite file."),
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Reader_init,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_methods = reader_methods,
    .tp_members = reader_members,
};

PyDoc_STRVAR(soft_heap_limit_doc,
"soft_heap_limit() -> int\n\n"
"This SQLite library's soft heap limit (`sqlite3_soft_heap_limit64(-1)`): set through Python's\n"
"sqlite3 (PRAGMA soft_heap_limit) and read here, it tells whether both are one library.");

static PyObject *soft_heap_limit(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLongLong(sqlite3_soft_heap_limit64(-1));
}

static PyMethodDef methods[] = {
    {"soft_heap_limit", soft_heap_limit, METH_NOARGS, soft_heap_limit_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sqlite_read",
    "The SQLite log read in C (see sluice.store.sqlite_read).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sqlite_read(void) {
    if (PyType_Ready(&ReaderType) < 0 || columns_ready() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
