/*
 * The user-space call_soon queue a competent libuv or libev user writes:
 * a growable ring (power-of-two capacity, doubled when full, storage reused,
 * so steady-state push/pop never allocates) of {callback, userdata}.
 * The loop-specific part (an idle watcher that drains a snapshot of the
 * queue once per iteration) lives in each benchmark file.
 */
#ifndef BENCH_FIFO_H
#define BENCH_FIFO_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct fifo_task {
  void (*cb)(void *ctx, void *userdata);
  void *userdata;
};

struct fifo {
  struct fifo_task *items;
  size_t mask; /* capacity - 1; capacity is a power of two */
  size_t head;
  size_t size;
};

static inline int fifo_init(struct fifo *q, size_t capacity_pow2) {
  q->items = malloc(capacity_pow2 * sizeof *q->items);
  q->mask = capacity_pow2 - 1;
  q->head = 0;
  q->size = 0;
  return q->items ? 0 : -1;
}

static inline void fifo_free(struct fifo *q) { free(q->items); }

static int fifo_grow(struct fifo *q) {
  size_t cap = q->mask + 1;
  struct fifo_task *items = malloc(2 * cap * sizeof *items);
  if (!items) return -1;
  /* Unwrap: the oldest item goes to index 0. */
  size_t first = cap - q->head < q->size ? cap - q->head : q->size;
  memcpy(items, q->items + q->head, first * sizeof *items);
  memcpy(items + first, q->items, (q->size - first) * sizeof *items);
  free(q->items);
  q->items = items;
  q->mask = 2 * cap - 1;
  q->head = 0;
  return 0;
}

static inline int fifo_push(struct fifo *q, void (*cb)(void *, void *), void *userdata) {
  if (q->size > q->mask && fifo_grow(q) != 0) return -1;
  struct fifo_task *t = &q->items[(q->head + q->size) & q->mask];
  t->cb = cb;
  t->userdata = userdata;
  q->size++;
  return 0;
}

static inline struct fifo_task fifo_pop(struct fifo *q) {
  struct fifo_task t = q->items[q->head];
  q->head = (q->head + 1) & q->mask;
  q->size--;
  return t;
}

#endif
