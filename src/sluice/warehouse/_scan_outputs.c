/*
 * The compiled reader's outputs (see _scan.c): each value text the JSON walk found typed as
 * sqlfit.py's SQL would type it (texts as DuckDB writes them, integers, floats, booleans,
 * timestamps as microseconds), into Arrow buffers whose memory _pool.c recycles.
 */
#include "_scan.h"

/* memcpy for a value's text, mostly a few bytes: inline, as two overlapping loads and stores
   of its first and last bytes (reading nothing outside either text). */
static inline void copy(char *to, const char *from, Py_ssize_t n) {
    if (n > 32) {
        memcpy(to, from, (size_t)n);
    } else if (n >= 16) {
        char head[16], tail[16];
        memcpy(head, from, 16);
        memcpy(tail, from + n - 16, 16);
        memcpy(to, head, 16);
        memcpy(to + n - 16, tail, 16);
    } else if (n >= 8) {
        uint64_t head, tail;
        memcpy(&head, from, 8);
        memcpy(&tail, from + n - 8, 8);
        memcpy(to, &head, 8);
        memcpy(to + n - 8, &tail, 8);
    } else if (n >= 4) {
        uint32_t head, tail;
        memcpy(&head, from, 4);
        memcpy(&tail, from + n - 4, 4);
        memcpy(to, &head, 4);
        memcpy(to + n - 4, &tail, 4);
    } else {
        for (Py_ssize_t i = 0; i < n; i++)
            to[i] = from[i];
    }
}

/* Room for `need` more bytes (the caller checked that the text stays within int32 offsets):
   out of line and marked cold, so that append_text, inlined, is a compare and a copy. */
static COLD int grow(Column *c, Py_ssize_t need);
static int grow(Column *c, Py_ssize_t need) {
    size_t block;
    size_t want = (size_t)(c->len + need);
    if (c->block && want < 2 * c->block) /* the next size up: doubling, as realloc's growth */
        want = 2 * c->block;
    char *data = pool_take(want, &block);
    if (!data)
        return -1;
    if (c->len)
        memcpy(data, c->data, (size_t)c->len);
    pool_give(c->data, c->block);
    c->data = data;
    c->block = block;
    /* the capacity never passes what int32 offsets reach */
    c->cap = block > INT32_MAX ? INT32_MAX : (Py_ssize_t)block;
    return 0;
}

/* The JSON text was there and not null (and, for values, not an object: those flatten). */
static int present(const char *w, Py_ssize_t n, int presence) {
    if (!w || (n == 4 && memcmp(w, "null", 4) == 0))
        return 0;
    return presence != PRESENT_VALUE || w[0] != '{';
}

/* sqlfit.GUARD: texts whose rendering by DuckDB and by Python may differ. */
static int guarded(const char *w, Py_ssize_t n) {
    int run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = w[i];
        if (c == '\\')
            return 1;
        if (is_digit(c)) {
            if (++run >= 16)
                return 1;
            if (i + 1 < n && (w[i + 1] == 'e' || w[i + 1] == 'E'))
                return 1;
            if (c == '0' && i + 5 < n && memcmp(w + i + 1, ".0000", 5) == 0)
                return 1;
        } else {
            run = 0;
        }
    }
    return 0;
}

static const double POWERS[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                                1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* A regular number token (number_token) as a double: at most 15 significant digits and no
   exponent, so digits / 10^k, both exact, divides to the correctly rounded value; integers of
   up to 18 digits convert correctly rounded. Returns 0 for anything else. */
static int number_value(const char *w, Py_ssize_t n, double *out, int64_t *integer,
                        int *is_integer) {
    Py_ssize_t i = 0;
    int negative = 0, frac = -1;
    int64_t digits = 0;
    if (n && w[0] == '-') {
        negative = 1;
        i = 1;
    }
    if (i >= n || !is_digit(w[i]))
        return 0;
    for (; i < n; i++) {
        if (w[i] == '.') {
            frac = 0;
            continue;
        }
        if (!is_digit(w[i]))
            return 0;
        digits = digits * 10 + (w[i] - '0');
        if (frac >= 0)
            frac++;
    }
    *is_integer = frac < 0;
    if (frac < 0) {
        *integer = negative ? -digits : digits;
        *out = (double)*integer;
    } else {
        if (frac > 15)
            return 0;
        double value = (double)digits / POWERS[frac];
        *out = negative ? -value : value;
    }
    return 1;
}

static int days_in_month(int year, int month) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return days[month - 1];
}

static int digits_at(const char *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* Seconds, fraction and 'Z' after the minute ("SS", "SS.mmm" or "SS.uuuuuu", then 'Z'), as
   microseconds, or -1. */
static int64_t seconds_of(const char *t, Py_ssize_t len) {
    int second, micros = 0;
    if (!digits_at(t + 17, 2, &second) || second > 59 || t[len - 1] != 'Z')
        return -1;
    if (len > 20) {
        int fraction, places = (int)len - 21;
        if (t[19] != '.' || !digits_at(t + 20, places, &fraction))
            return -1;
        micros = places == 3 ? fraction * 1000 : fraction;
    }
    return (int64_t)second * 1000000 + micros;
}

/* A quoted ISO-8601 text in one of sqlfit.TIMESTAMP_GLOBS' shapes, with every field in range,
   as microseconds since 1970 (UTC); 0 when not (the SQL's TRY_CAST or Python decides then).
   With `minutes`, a text in the minute it holds is read from its seconds on. */
static int timestamp_value(const char *w, Py_ssize_t n, int64_t *out, Minutes *minutes) {
    if (minutes && minutes->known && (n == 22 || n == 26 || n == 29) && w[0] == '"' &&
        w[n - 1] == '"' && same_bytes(w + 1, minutes->minute, MINUTE_LEN)) {
        int64_t within = seconds_of(w + 1, n - 2);
        if (within < 0)
            return 0;
        *out = minutes->micros + within;
        return 1;
    }
    if (n < 12 || w[0] != '"' || w[n - 1] != '"')
        return 0;
    const char *t = w + 1;
    Py_ssize_t len = n - 2;
    int year, month, day, hour = 0, minute = 0, second = 0, micros = 0;
    if (!(len == 10 || len == 20 || len == 24 || len == 27))
        return 0;
    if (!digits_at(t, 4, &year) || t[4] != '-' || !digits_at(t + 5, 2, &month) || t[7] != '-' ||
        !digits_at(t + 8, 2, &day))
        return 0;
    if (len > 10) {
        if (t[10] != 'T' || !digits_at(t + 11, 2, &hour) || t[13] != ':' ||
            !digits_at(t + 14, 2, &minute) || t[16] != ':' || !digits_at(t + 17, 2, &second) ||
            t[len - 1] != 'Z')
            return 0;
        if (len > 20) {
            int fraction, places = (int)len - 21;
            if (t[19] != '.' || !digits_at(t + 20, places, &fraction))
                return 0;
            micros = places == 3 ? fraction * 1000 : fraction;
        }
    }
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 59)
        return 0;
    /* days from civil (proleptic Gregorian), 1970-01-01 = 0 */
    int y = month <= 2 ? year - 1 : year;
    int era = y / 400;
    int yoe = y - era * 400;
    int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    int64_t at_minute = (days * 86400 + hour * 3600 + minute * 60) * 1000000;
    *out = at_minute + (int64_t)second * 1000000 + micros;
    if (minutes && len > 10) {
        memcpy(minutes->minute, t, MINUTE_LEN);
        minutes->micros = at_minute;
        minutes->known = 1;
    }
    return 1;
}

/* Inlined: as a call per value it took a tenth of the reader's time. c->cap <= INT32_MAX, so
   a text within it fits int32 offsets. */
static ALWAYS_INLINE int append_text(Column *c, const char *p, Py_ssize_t n) {
    if (c->len + n > c->cap && (c->len + n > INT32_MAX || grow(c, n) < 0))
        return -1;
    copy(c->data + c->len, p, n);
    c->len += n;
    return 0;
}

/* One output value of one row: 1 when set, 0 when NULL, -1 when out of memory. */
static int emit(const Out *o, Output *out, Py_ssize_t row, const char *w, Py_ssize_t n,
                Minutes *minutes) {
    double number;
    int64_t integer;
    int is_integer, is_string = w && w[0] == '"';
    switch (o->op) {
    case OP_RAW:
        if (!w)
            return 0;
        return append_text(&out->text, w, n) < 0 ? -1 : 1;
    case OP_STRING:
    case OP_TEXT_ALL:
    case OP_TEXT:
    case OP_MOMENT_TEXT:
        if (!w || (n == 4 && memcmp(w, "null", 4) == 0))
            return 0;
        if (is_string) {
            if (o->op == OP_MOMENT_TEXT)
                return 0;
            return append_text(&out->text, w + 1, n - 2) < 0 ? -1 : 1;
        }
        if (o->op != OP_STRING && (guarded(w, n) || (o->op == OP_TEXT && w[0] == '{')))
            return 0;
        return append_text(&out->text, w, n) < 0 ? -1 : 1;
    case OP_INTEGER:
        if (!w || is_string || !number_value(w, n, &number, &integer, &is_integer))
            return 0;
        if (!is_integer) {
            if (!(number >= -9.223372036854775808e18 && number < 9.223372036854775808e18))
                return 0;
            integer = (int64_t)number;
            if ((double)integer != number)
                return 0; /* a fraction */
        }
        memcpy(out->fixed + row * 8, &integer, 8);
        return 1;
    case OP_FLOAT:
        if (!w || is_string || !number_value(w, n, &number, &integer, &is_integer))
            return 0;
        memcpy(out->fixed + row * 8, &number, 8);
        return 1;
    case OP_BOOLEAN:
        if (w && n == 4 && memcmp(w, "true", 4) == 0) {
            out->fixed[row >> 3] |= (uint8_t)(1u << (row & 7));
            return 1;
        }
        return w && n == 5 && memcmp(w, "false", 5) == 0;
    case OP_TIMESTAMP:
        if (!w || !timestamp_value(w, n, &integer, minutes))
            return 0;
        memcpy(out->fixed + row * 8, &integer, 8);
        return 1;
    default:
        return 0;
    }
}

void free_outputs(Output *outputs, int count) {
    if (!outputs)
        return;
    for (int i = 0; i < count; i++) {
        free(outputs[i].valid);
        pool_give(outputs[i].text.data, outputs[i].text.block);
        pool_give(outputs[i].text.offsets, outputs[i].text.offsets_block);
        if (outputs[i].fixed_block)
            pool_give(outputs[i].fixed, outputs[i].fixed_block);
        else
            free(outputs[i].fixed);
    }
    free(outputs);
}

/* The outputs as Python gives them: [(op, presence, path, alt, flagged), ...]. */
Out *read_outputs(PyObject *spec, int paths, int *count) {
    Py_ssize_t n = PyList_Size(spec);
    Out *outs = calloc((size_t)(n ? n : 1), sizeof(Out));
    if (!outs) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Out *o = &outs[i];
        if (!PyArg_ParseTuple(PyList_GetItem(spec, i), "iiiip", &o->op, &o->presence, &o->path,
                              &o->alt, &o->flagged) ||
            o->op < 0 || o->op >= OP_COUNT || o->path < -1 || o->path >= paths ||
            o->alt < -1 || o->alt >= paths) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a malformed output");
            free(outs);
            return NULL;
        }
    }
    *count = (int)n;
    return outs;
}

/* Each output's buffers for `count` rows: validity, and offsets (texts) or values; NULL when
   out of memory (what was taken is freed). */
Output *new_outputs(const Out *outs, int n_outs, Py_ssize_t count) {
    Py_ssize_t bitmap_len = (count + 7) / 8 + 1;
    Output *outputs = calloc((size_t)(n_outs ? n_outs : 1), sizeof(Output));
    if (!outputs)
        return NULL;
    for (int i = 0; i < n_outs; i++) {
        Output *out = &outputs[i];
        out->valid = calloc((size_t)bitmap_len, 1);
        if (is_string_op(outs[i].op)) { /* every row's end is written */
            size_t bytes = ((size_t)count + 1) * sizeof(int32_t);
            out->text.offsets = pool_take(bytes, &out->text.offsets_block);
            if (out->text.offsets)
                out->text.offsets[0] = 0;
        } else if (outs[i].op == OP_BOOLEAN) {
            out->fixed = calloc((size_t)bitmap_len, 1);
        } else if (outs[i].op != OP_NONE) { /* zeros under NULLs, as calloc gave */
            out->fixed = pool_take(((size_t)count + 1) * 8, &out->fixed_block);
            if (out->fixed)
                memset(out->fixed, 0, ((size_t)count + 1) * 8);
        }
        if (!out->valid || (is_string_op(outs[i].op) && !out->text.offsets) ||
            (outs[i].op != OP_NONE && !is_string_op(outs[i].op) && !out->fixed)) {
            free_outputs(outputs, n_outs);
            return NULL;
        }
    }
    return outputs;
}

/* One event's values (`start`/`size`: each path's text, or NULL) into every output at `row`,
   setting the row's flag where a present value comes out NULL; an irregular event gets
   nothing (an empty text, where texts go). -1 when out of memory. */
int emit_row(const Out *outs, Output *outputs, int n_outs, Py_ssize_t row,
             const char *const *start, const Py_ssize_t *size, int irregular, Minutes *minutes,
             uint8_t *flag_bits) {
    uint8_t bit = (uint8_t)(1u << (row & 7));
    for (int i = 0; i < n_outs; i++) {
        const Out *o = &outs[i];
        Output *out = &outputs[i];
        if (irregular) {
            if (out->text.offsets)
                out->text.offsets[row + 1] = (int32_t)out->text.len;
            continue;
        }
        const char *w = o->path >= 0 ? start[o->path] : NULL;
        Py_ssize_t n = o->path >= 0 ? size[o->path] : 0;
        if (o->alt >= 0 && !present(w, n, PRESENT_ANY)) { /* a page's name: else the property */
            const char *alt = start[o->alt];
            w = present(alt, size[o->alt], PRESENT_VALUE) ? alt : NULL;
            n = w ? size[o->alt] : 0;
        }
        int set = emit(o, out, row, w, n, minutes);
        if (set < 0)
            return -1;
        if (set)
            out->valid[row >> 3] |= bit;
        else if (o->flagged && present(w, n, o->presence))
            flag_bits[row >> 3] |= bit;
        if (out->text.offsets)
            out->text.offsets[row + 1] = (int32_t)out->text.len;
    }
    return 0;
}
