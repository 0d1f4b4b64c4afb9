package async

/*
#include <async.h>

extern void goBenchCallback(async_loop *, void *);

// n events through the queue: n posts, drained in batches by the caller.
static int bench_queue_posts(async_queue *q, int n, uint64_t token) {
  for (int i = 0; i < n; ++i) {
    int rc = async_queue_post(q, token);
    if (rc < 0) return rc;
  }
  return 0;
}

// n events as callbacks into Go, each with a handle to look up.
static int bench_callback_posts(async_loop *loop, int n, uintptr_t handle) {
  for (int i = 0; i < n; ++i) {
    int rc = async_loop_post(loop, goBenchCallback, (void *)handle);
    if (rc < 0) return rc;
  }
  return async_loop_run(loop, ASYNC_RUN_NOWAIT);
}
*/
import "C"

import "runtime/cgo"

// benchCounter counts the records of one token (bench_test.go).
type benchCounter struct{ n int }

func (b *benchCounter) event(*C.async_event) { b.n++ }

// benchQueueEvents delivers n events through the queue to a handler
// (loop goroutine; the loop is not running).
func (l *Loop) benchQueueEvents(n int) int {
	b := &benchCounter{}
	token := l.register(b)
	defer l.unregister(token)
	for done := 0; done < n; done += batchSize {
		C.bench_queue_posts(l.q, batchSize, C.uint64_t(token))
		for b.n < done+batchSize {
			if _, err := l.pollOnce(0); err != nil {
				return b.n
			}
		}
	}
	return b.n
}

// benchCallbackEvents delivers n events as C→Go callbacks.
func (l *Loop) benchCallbackEvents(n int) int {
	count := 0
	h := cgo.NewHandle(&count)
	defer h.Delete()
	for done := 0; done < n; done += batchSize {
		C.bench_callback_posts(l.c, batchSize, C.uintptr_t(h))
	}
	return count
}
