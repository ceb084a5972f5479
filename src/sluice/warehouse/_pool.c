/*
 * Memory the compiled reader's output buffers reuse.
 *
 * A load reads chunk after chunk into output buffers of about the same sizes, while the chunk
 * before is still being encoded. Taken from malloc, each chunk's outputs were mostly fresh
 * pages (what the last chunk freed had gone back to the system, or to another thread's arena):
 * a page fault every 4 KiB, and each text that grew copied by realloc into more fresh pages
 * (perf: ~70 % of a lake load's page faults). Here a buffer that is freed goes to a free list
 * of its size (powers of two) and the next buffer of that size is that memory, already mapped.
 * `_scan.release()` gives it all back (the loader calls it after each load); at most POOL_MAX
 * bytes are kept meanwhile, the rest is freed at once.
 *
 * Blocks are taken without the GIL (a text grows while the reader runs) and given back with it
 * (a Buffer's dealloc): one lock guards the lists.
 */
#include <Python.h>
#include <pythread.h>

#include "_pool.h"

#define POOL_MIN_SHIFT 12 /* 4 KiB: the smallest block */
#define POOL_CLASSES 64
#define POOL_MAX ((size_t)1 << 30) /* bytes kept in the lists at most */

typedef struct Free {
    struct Free *next;
} Free;

static Free *lists[POOL_CLASSES];
static size_t kept_blocks, kept_bytes;
static PyThread_type_lock lock;

int pool_init(void) {
    lock = PyThread_allocate_lock();
    return lock ? 0 : -1;
}

static int shift_of(size_t need) {
    int shift = POOL_MIN_SHIFT;
    while (shift < POOL_CLASSES - 1 && ((size_t)1 << shift) < need)
        shift++;
    return shift;
}

/* A block of at least `need` bytes (not zeroed); `*block` is its size, for `pool_give`. */
void *pool_take(size_t need, size_t *block) {
    int shift = shift_of(need);
    size_t size = (size_t)1 << shift;
    Free *hit;
    PyThread_acquire_lock(lock, WAIT_LOCK);
    hit = lists[shift];
    if (hit) {
        lists[shift] = hit->next;
        kept_blocks--;
        kept_bytes -= size;
    }
    PyThread_release_lock(lock);
    void *data = hit ? (void *)hit : malloc(size);
    *block = data ? size : 0;
    return data;
}

/* `data` (a block of `block` bytes from pool_take, or NULL) back to its list, or freed. */
void pool_give(void *data, size_t block) {
    if (!data)
        return;
    int shift = shift_of(block);
    int kept = 0;
    PyThread_acquire_lock(lock, WAIT_LOCK);
    if (((size_t)1 << shift) == block && kept_bytes + block <= POOL_MAX) {
        Free *item = data;
        item->next = lists[shift];
        lists[shift] = item;
        kept_blocks++;
        kept_bytes += block;
        kept = 1;
    }
    PyThread_release_lock(lock);
    if (!kept)
        free(data);
}

/* Frees every block kept; returns how many bytes. */
size_t pool_release(void) {
    Free *all[POOL_CLASSES];
    size_t bytes;
    PyThread_acquire_lock(lock, WAIT_LOCK);
    memcpy(all, lists, sizeof all);
    memset(lists, 0, sizeof lists);
    bytes = kept_bytes;
    kept_blocks = kept_bytes = 0;
    PyThread_release_lock(lock);
    for (int shift = 0; shift < POOL_CLASSES; shift++) {
        for (Free *item = all[shift]; item;) {
            Free *next = item->next;
            free(item);
            item = next;
        }
    }
    return bytes;
}

void pool_stats(size_t *blocks, size_t *bytes) {
    PyThread_acquire_lock(lock, WAIT_LOCK);
    *blocks = kept_blocks;
    *bytes = kept_bytes;
    PyThread_release_lock(lock);
}
