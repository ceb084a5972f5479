/*
 * a[:n] == b[:n] for the C extensions' short texts (keys, ids): the compiled reader's
 * (warehouse/_scan.h) and the lake's distinct counter (lake/_distinct.c).
 */
#ifndef SLUICE_SAME_BYTES_H
#define SLUICE_SAME_BYTES_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Inline: keys and ids are short, and a call to memcmp per key cost more than the
   comparison. */
static inline int same_bytes(const char *a, const char *b, Py_ssize_t n) {
    uint64_t x, y;
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return 0;
    }
    if (n >= 4) {
        uint32_t u, v;
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v)
            return 0;
        a += 4;
        b += 4;
        n -= 4;
    }
    for (; n > 0; n--)
        if (*a++ != *b++)
            return 0;
    return 1;
}

#endif
