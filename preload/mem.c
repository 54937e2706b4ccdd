/* Memory for the shim without malloc. The shim runs inside calls that
 * signal handlers may make (write, close, connect...), and a handler may
 * have interrupted malloc itself: so what the shim allocates on those
 * paths comes from mmap, a system call that takes no lock in user space.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#define PAGE 4096u

void *tfo__pages_alloc(size_t n) {
  int saved = errno;
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);

  errno = saved;
  return p == MAP_FAILED ? NULL : p;
}

void tfo__pages_free(void *p, size_t n) {
  int saved = errno;

  if (p != NULL)
    (void)munmap(p, n);
  errno = saved;
}

/* Kept first bytes (recover.c): a header with the mapping's size, then the
 * bytes. Most first writes are a request of a few hundred bytes: their
 * one-page mappings are pooled, so a connection usually costs no system
 * call for them. */
struct kept {
  size_t size; /* of the whole mapping */
  size_t pad;  /* keeps the bytes 16-aligned */
};

#define SPARES 32
static void *_Atomic spares[SPARES];

char *tfo__kept_alloc(size_t n) {
  size_t size = (sizeof(struct kept) + n + PAGE - 1) / PAGE * PAGE;
  struct kept *k = NULL;
  int i;

  if (n > TFO__SHIM_KEEP_MAX)
    return NULL;
  if (size == PAGE)
    for (i = 0; i < SPARES && k == NULL; i++)
      if (atomic_load_explicit(&spares[i], memory_order_relaxed) != NULL)
        k = atomic_exchange(&spares[i], NULL);
  if (k == NULL && (k = tfo__pages_alloc(size)) == NULL)
    return NULL;
  k->size = size;
  return (char *)(k + 1);
}

void tfo__kept_free(char *p) {
  struct kept *k;
  int i;

  if (p == NULL)
    return;
  k = (struct kept *)p - 1;
  if (k->size == PAGE)
    for (i = 0; i < SPARES; i++) {
      void *expect = NULL;

      if (atomic_compare_exchange_strong(&spares[i], &expect, (void *)k))
        return;
    }
  tfo__pages_free(k, k->size);
}
