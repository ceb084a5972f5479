/*
 * What the compiled reader's parts share: _scan.c (the module, and the scan of each event),
 * _scan_json.c (the JSON walk and the tree it follows), _scan_outputs.c (each value typed into
 * its output columns) and _pool.c (the memory those columns reuse).
 */
#ifndef SLUICE_SCAN_H
#define SLUICE_SCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../_same_bytes.h"
#include "_pool.h"

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define COLD __attribute__((noinline, cold))
#else
#define PREFETCH(p) ((void)(p))
#define ALWAYS_INLINE inline
#define COLD
#endif

/* The fast paths: strings scanned 16 bytes at a time with SSE2, which is part of x86-64 itself
   (every such CPU has it: no runtime check; elsewhere a byte at a time), known keys matched on
   the payload's bytes before scanning them (with their quote and colon in one 16-byte compare
   where SSE2 is built in), and timestamps in the minute of the one before read from their
   seconds on. `_scan.fast(False)` turns them off: the tests compare both ways. */
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>
#define SCAN_SSE2 1
#endif

#define PREFETCH_AHEAD 4
#define MAX_DEPTH 64
#define MAX_INT_DIGITS 18   /* integers DuckDB keeps as written */
#define MAX_SIG_DIGITS 15   /* decimals that survive a round trip through a double */

typedef struct {
    const char *key;
    Py_ssize_t len;
    int child;
    int plain; /* no quote, backslash or control byte: the key's bytes are its JSON text */
    /* A plain key of up to 14 bytes as the payload holds it, `key":`, compared 16 bytes at a
       time (`pattern` under `mask`, one bit a byte): one compare instead of a byte loop. */
    char pattern[16];
    unsigned mask;
} Member;

typedef struct {
    int w;          /* output column of this path's text, or -1 (not read) */
    int whole;      /* an object value is checked against the members (read whole) */
    int object;     /* an object value is flattened into the members */
    int first;      /* members[first : first + count] */
    int count;
} Node;

typedef struct {
    char *data;
    Py_ssize_t len, cap;
    size_t block; /* data's block (_pool.c); cap is at most INT32_MAX of it */
    int32_t *offsets;
    size_t offsets_block;
} Column;

typedef struct {
    const Node *nodes;
    const Member *members;
    uint32_t *seen;     /* per member: the object instance that last had it */
    int n_seen;
    uint32_t stamp;
    const char **start; /* per column: this event's value text, or NULL */
    Py_ssize_t *size;
    int irregular;
    int ok;
    int fast;
} Scan;

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* What an output column holds (readers.py names them). */
enum {
    OP_RAW,        /* the JSON text, as json_extract gives it */
    OP_STRING,     /* json_extract_string: a string unquoted, null NULL, else the JSON text */
    OP_TEXT_ALL,   /* sqlfit._text(objects=True) */
    OP_TEXT,       /* sqlfit._text(objects=False) */
    OP_MOMENT_TEXT,/* a non-string as _text(objects=True); strings are Python's */
    OP_INTEGER,
    OP_FLOAT,
    OP_BOOLEAN,
    OP_TIMESTAMP,  /* microseconds since 1970 */
    OP_NONE,       /* always NULL */
    OP_COUNT
};
enum { PRESENT_ANY, PRESENT_VALUE }; /* sqlfit.present_sql: ids/names/moments, or values */

typedef struct {
    int op, presence, path, alt, flagged;
} Out;

typedef struct {
    uint8_t *valid;
    Column text;       /* string ops */
    uint8_t *fixed;    /* 8 bytes a row (integers, floats, timestamps) or a bitmap (booleans) */
    size_t fixed_block; /* 8 bytes a row: its block (_pool.c); a bitmap: 0 (malloc's) */
} Output;

static inline int is_string_op(int op) { return op <= OP_MOMENT_TEXT; }

/* The last timestamp's date, hour and minute ("YYYY-MM-DDTHH:MM:", checked in range) and
   that minute's microseconds since 1970: an event's four timestamps, and the events of a group
   in log order, mostly share their minute, and a text that starts the same only needs its
   seconds read (a sixth of the reader's time went to whole timestamps). Fast path only. */
#define MINUTE_LEN 17
typedef struct {
    char minute[MINUTE_LEN];
    int64_t micros;
    int known;
} Minutes;

/* _scan_json.c */
const char *object_members(Scan *s, const char *p, const char *end, int node, int depth,
                           int need_members);
int read_tree(PyObject *spec, Node **nodes_out, Member **members_out, int *n_members,
              int columns);

/* _scan_outputs.c */
Out *read_outputs(PyObject *spec, int paths, int *count);
Output *new_outputs(const Out *outs, int n_outs, Py_ssize_t count);
int emit_row(const Out *outs, Output *outputs, int n_outs, Py_ssize_t row,
             const char *const *start, const Py_ssize_t *size, int irregular, Minutes *minutes,
             uint8_t *flag_bits);
void free_outputs(Output *outputs, int count);

#endif
