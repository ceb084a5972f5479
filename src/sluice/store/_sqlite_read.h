/*
 * What the SQLite log's reader shares between its parts: _sqlite_read.c (the module, the
 * `Reader` and its rows as Python tuples) and _sqlite_columns.c (its rows column by column).
 */
#ifndef SLUICE_SQLITE_READ_H
#define SLUICE_SQLITE_READ_H

#define PY_SSIZE_T_CLEAN
#ifdef __linux__
#define _GNU_SOURCE /* mremap */
#include <sys/mman.h>
#endif
#include <Python.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#define MAX_COLUMNS 16

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
    sqlite3_stmt *stmt;
    int columns;
    long long replaced; /* texts read that were not UTF-8 (U+FFFD in place of bad bytes) */
} Reader;

/* _sqlite_read.c */
PyObject *sqlite_error(sqlite3 *db, int rc);
PyObject *decoded_text(Reader *r, const char *p, Py_ssize_t n);

/* _sqlite_columns.c */
int columns_ready(void);
PyObject *stepped_columns(Reader *r, const char *kinds);

#endif
