/* Memory the compiled reader's output buffers reuse (see _pool.c). */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

#include <stddef.h>

int pool_init(void);
void *pool_take(size_t need, size_t *block);
void pool_give(void *data, size_t block);
size_t pool_release(void);
void pool_stats(size_t *blocks, size_t *bytes);

#endif
