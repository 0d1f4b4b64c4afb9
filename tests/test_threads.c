/*
 * "No thread ever created by the library" (DESIGN.md §3), and no signal
 * disposition left changed behind the user's back (§5).
 *
 * The tests run in order in one process: each exercises one feature (loop
 * and call_soon, a post from a user thread that is then joined, timers, a
 * watcher on a pipe, hooks, signals raised to self, futures and
 * combinators, run_until). The last one asserts that the process has no
 * thread that was not there before the first test (/proc/self/task) and
 * that every signal disposition, SIGCHLD's SIG_DFL in particular, is what
 * it was before the first test.
 *
 * Callbacks never assert (a cmocka failure would longjmp through the
 * library): they record, and the test asserts after the loop returns.
 */
#include "test_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The process before the first test (group setup)                      */

#define MAX_TIDS 16

/* The ids of the process's threads (/proc/self/task), at most MAX_TIDS;
 * returns how many, or -1 if the directory cannot be read. */
static int list_tids(pid_t *tids) {
  DIR *dir = opendir("/proc/self/task");
  if (dir == NULL) {
    return -1;
  }
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL && n < MAX_TIDS) {
    if (e->d_name[0] != '.') {
      tids[n++] = (pid_t)atoi(e->d_name);
    }
  }
  closedir(dir);
  return n;
}

static int tid_listed(pid_t tid, const pid_t *tids, int n) {
  for (int i = 0; i < n; i++) {
    if (tids[i] == tid) {
      return 1;
    }
  }
  return 0;
}

/* Threads of the process with no library call made yet: this one, plus
 * whatever a runtime starts alongside the first thread of the program's
 * own (ThreadSanitizer's runtime starts a helper thread then, which would
 * otherwise look like a thread the library left behind). */
static pid_t g_initial_tids[MAX_TIDS];
static int g_initial_ntids;

/* Dispositions of every signal before the first test. */
static struct sigaction g_initial[NSIG];
static int g_initial_rc[NSIG];

static void *record_tid(void *arg) {
  *(pid_t *)arg = (pid_t)syscall(SYS_gettid);
  return NULL;
}

static int snapshot_process(void **state) {
  (void)state;
  for (int sig = 1; sig < NSIG; sig++) {
    g_initial_rc[sig] = sigaction(sig, NULL, &g_initial[sig]);
  }
  /* A thread of the test's own, started and joined, then gone from
   * /proc/self/task (it lingers a moment after the join returns). */
  pid_t joined = 0;
  pthread_t th;
  if (pthread_create(&th, NULL, record_tid, &joined) != 0 || pthread_join(th, NULL) != 0) {
    return -1;
  }
  for (int i = 0; i < 200; i++) {
    g_initial_ntids = list_tids(g_initial_tids);
    if (g_initial_ntids < 0 || !tid_listed(joined, g_initial_tids, g_initial_ntids)) {
      break;
    }
    tu_sleep_ms(10);
  }
  return g_initial_ntids > 0 && !tid_listed(joined, g_initial_tids, g_initial_ntids) ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Loop and call_soon                                                   */

struct soon {
  int order[8];
  int n;
};

static int g_soon_ids[5] = {0, 1, 2, 3, 4};

static struct soon *g_soon;

static void soon_cb(async_loop *loop, void *ud) {
  int id = *(int *)ud;
  if (g_soon->n < 8) {
    g_soon->order[g_soon->n++] = id;
  }
  if (id == 1) {
    /* Queued during the pass: runs after 2 and 3, on the next iteration. */
    if (async_loop_call_soon(loop, soon_cb, &g_soon_ids[4]) != 0 && g_soon->n < 8) {
      g_soon->order[g_soon->n++] = -1;
    }
  }
}

static void test_loop_and_call_soon(void **state) {
  (void)state;
  struct soon s;
  memset(&s, 0, sizeof s);
  g_soon = &s;
  async_loop *loop = tu_loop_new();
  int64_t timeout = 0;
  assert_int_equal(async_loop_timeout(&timeout, loop), 0);
  assert_int_equal(timeout, -1);
  assert_int_equal(async_loop_alive(loop), 0);

  for (int i = 1; i <= 3; i++) {
    assert_int_equal(async_loop_call_soon(loop, soon_cb, &g_soon_ids[i]), 0);
  }
  assert_int_equal(s.n, 0); /* never inside the scheduling call */
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_loop_timeout(&timeout, loop), 0);
  assert_int_equal(timeout, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s.n, 4);
  assert_int_equal(s.order[0], 1);
  assert_int_equal(s.order[1], 2);
  assert_int_equal(s.order[2], 3);
  assert_int_equal(s.order[3], 4);
  assert_true(tu_metric(loop, ASYNC_METRIC_CALLBACKS) >= 4);

  uint64_t now = 0;
  assert_int_equal(async_loop_now(&now, loop), 0);
  assert_int_equal(async_loop_now_update(loop), 0);
  assert_int_equal(async_loop_free(loop), 0);
  g_soon = NULL;
}

/* ------------------------------------------------------------------ */
/* Post from a user thread, which is joined                             */

#define N_POSTS 1000

struct post {
  async_loop *loop;
  async_timer *keepalive;
  int expired;
  long received;
  long out_of_order;
  int post_errors; /* written by the poster, read after the join */
  int wakeup_rc;
};

static void post_keepalive_expired(async_timer *t, void *ud) {
  (void)t;
  struct post *p = ud;
  p->expired = 1;
  async_handle_close(async_timer_handle(p->keepalive), NULL);
}

static struct post *g_post;

static void post_cb(async_loop *loop, void *ud) {
  (void)loop;
  uintptr_t seq = (uintptr_t)ud;
  if ((long)seq != g_post->received) {
    g_post->out_of_order++;
  }
  g_post->received++;
  if (g_post->received == N_POSTS) {
    async_handle_close(async_timer_handle(g_post->keepalive), NULL);
  }
}

static void *poster(void *arg) {
  struct post *p = arg;
  for (uintptr_t i = 0; i < N_POSTS; i++) {
    if (async_loop_post(p->loop, post_cb, (void *)i) != 0) {
      p->post_errors++;
    }
    if (i == N_POSTS / 2) {
      p->wakeup_rc = async_loop_wakeup(p->loop);
    }
  }
  return NULL;
}

static void test_post_from_user_thread(void **state) {
  (void)state;
  struct post p;
  memset(&p, 0, sizeof p);
  g_post = &p;
  p.loop = tu_loop_new();
  p.keepalive = tu_timer_start(p.loop, &p, 20000, 0, post_keepalive_expired);

  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, poster, &p), 0);
  assert_int_equal(async_loop_run(p.loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(pthread_join(th, NULL), 0);

  assert_int_equal(p.expired, 0);
  assert_int_equal(p.post_errors, 0);
  assert_int_equal(p.wakeup_rc, 0);
  assert_int_equal(p.received, N_POSTS);
  assert_int_equal(p.out_of_order, 0);
  assert_int_equal(async_loop_free(p.loop), 0);
  /* A post to a freed loop is refused, not a crash. */
  assert_int_equal(async_loop_post(p.loop, post_cb, NULL), ASYNC_ECLOSED);
  g_post = NULL;
}

/* ------------------------------------------------------------------ */
/* Timers: one-shot, repeating with set_repeat, again                   */

struct timers {
  async_timer *oneshot, *repeating, *again;
  int oneshot_fired;
  int repeating_fired;
  int again_fired;
  uint64_t again_elapsed_ms;
  uint64_t t0_ns;
  int errors;
};

static void oneshot_cb(async_timer *t, void *ud) {
  struct timers *s = ud;
  s->oneshot_fired++;
  if (async_handle_close(async_timer_handle(t), NULL) != 0) {
    s->errors++;
  }
}

static void repeating_cb(async_timer *t, void *ud) {
  struct timers *s = ud;
  if (++s->repeating_fired == 3) {
    /* Repeat 0: this is the last call; the timer stops by itself. */
    if (async_timer_set_repeat(t, 0) != 0) {
      s->errors++;
    }
  }
}

static void again_cb(async_timer *t, void *ud) {
  struct timers *s = ud;
  s->again_fired++;
  s->again_elapsed_ms = (tu_now_ns() - s->t0_ns) / 1000000u;
  if (async_handle_close(async_timer_handle(t), NULL) != 0) {
    s->errors++;
  }
}

static void test_timers(void **state) {
  (void)state;
  struct timers s;
  memset(&s, 0, sizeof s);
  async_loop *loop = tu_loop_new();
  s.t0_ns = tu_now_ns();

  s.oneshot = tu_timer_start(loop, &s, 10, 0, oneshot_cb);

  s.repeating = tu_timer_start(loop, &s, 5, 5, repeating_cb);

  /* Started far out, then again(): re-armed with the 20 ms repeat. */
  s.again = tu_timer_start(loop, &s, 100000, 20, again_cb);
  assert_int_equal(async_timer_again(s.again), 0);
  uint64_t due = 0;
  assert_int_equal(async_timer_due_in(&due, s.again), 0);
  assert_true(due <= 20);

  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.oneshot_fired, 1);
  assert_int_equal(s.repeating_fired, 3);
  assert_int_equal(async_handle_is_active(async_timer_handle(s.repeating)), 0);
  assert_int_equal(s.again_fired, 1);
  assert_true(s.again_elapsed_ms >= 20);
  assert_true(s.again_elapsed_ms < 10000);

  tu_close(async_timer_handle(s.repeating));
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Watchers on a pipe                                                   */

struct pipe_state {
  int fds[2];
  async_watcher *reader, *writer;
  char buf[16];
  size_t got;
  int writes;
  int errors;
};

static void writer_cb(async_watcher *w, uint32_t revents, void *ud) {
  struct pipe_state *p = ud;
  if ((revents & ASYNC_WRITABLE) == 0) {
    p->errors++;
    return;
  }
  if (write(p->fds[1], "hello", 5) != 5) {
    p->errors++;
  }
  p->writes++;
  /* One write is enough: stop watching without destroying the watcher. */
  if (async_watcher_set_events(w, 0) != 0) {
    p->errors++;
  }
}

static void reader_cb(async_watcher *w, uint32_t revents, void *ud) {
  struct pipe_state *p = ud;
  if ((revents & ASYNC_READABLE) == 0) {
    p->errors++;
    return;
  }
  ssize_t n = read(p->fds[0], p->buf + p->got, sizeof p->buf - 1 - p->got);
  if (n <= 0) {
    p->errors++;
    return;
  }
  p->got += (size_t)n;
  if (p->got >= 5) {
    if (async_handle_close(async_watcher_handle(w), NULL) != 0 ||
        async_handle_close(async_watcher_handle(p->writer), NULL) != 0) {
      p->errors++;
    }
  }
}

static void test_watcher_on_pipe(void **state) {
  (void)state;
  struct pipe_state p;
  memset(&p, 0, sizeof p);
  assert_int_equal(pipe2(p.fds, O_NONBLOCK | O_CLOEXEC), 0);
  async_loop *loop = tu_loop_new();

  p.reader = tu_watcher_new(loop, p.fds[0], &p);
  assert_int_equal(async_watcher_start(p.reader, ASYNC_READABLE, reader_cb), 0);
  assert_int_equal(async_watcher_fd(p.reader), p.fds[0]);
  p.writer = tu_watcher_new(loop, p.fds[1], &p);
  assert_int_equal(async_watcher_start(p.writer, ASYNC_WRITABLE, writer_cb), 0);

  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(p.errors, 0);
  assert_int_equal(p.writes, 1);
  assert_int_equal(p.got, 5);
  assert_memory_equal(p.buf, "hello", 5);

  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(close(p.fds[0]), 0);
  assert_int_equal(close(p.fds[1]), 0);
}

/* ------------------------------------------------------------------ */
/* Hooks: prepare, check, idle                                          */

struct hooks {
  async_hook *prepare, *check, *idle;
  int prepare_runs, check_runs, idle_runs;
  int errors;
};

static void prepare_cb(async_hook *h, void *ud) {
  (void)h;
  ((struct hooks *)ud)->prepare_runs++;
}

static void check_cb(async_hook *h, void *ud) {
  (void)h;
  ((struct hooks *)ud)->check_runs++;
}

static void idle_cb(async_hook *h, void *ud) {
  struct hooks *s = ud;
  if (++s->idle_runs == 3) {
    if (async_handle_close(async_hook_handle(h), NULL) != 0 ||
        async_handle_close(async_hook_handle(s->prepare), NULL) != 0 ||
        async_handle_close(async_hook_handle(s->check), NULL) != 0) {
      s->errors++;
    }
  }
}

static void test_hooks(void **state) {
  (void)state;
  struct hooks s;
  memset(&s, 0, sizeof s);
  async_loop *loop = tu_loop_new();
  s.prepare = tu_hook_new(loop, ASYNC_HOOK_PREPARE, &s);
  s.check = tu_hook_new(loop, ASYNC_HOOK_CHECK, &s);
  s.idle = tu_hook_new(loop, ASYNC_HOOK_IDLE, &s);
  assert_int_equal(async_hook_get_kind(s.check), ASYNC_HOOK_CHECK);
  assert_int_equal(async_hook_start(s.prepare, prepare_cb), 0);
  assert_int_equal(async_hook_start(s.check, check_cb), 0);
  assert_int_equal(async_hook_start(s.idle, idle_cb), 0);

  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.idle_runs, 3);
  assert_true(s.prepare_runs >= 2);
  assert_true(s.check_runs >= 2);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Signals raised to self (SIGUSR1, and SIGCHLD: both must be restored) */

struct sigs {
  async_signal *usr1, *chld;
  int got_usr1, got_chld;
  int errors;
};

static void raise_cb(async_loop *loop, void *ud) {
  (void)loop;
  struct sigs *s = ud;
  if (raise(SIGUSR1) != 0 || raise(SIGCHLD) != 0) {
    s->errors++;
  }
}

static void signal_cb(async_signal *sig, int signum, void *ud) {
  struct sigs *s = ud;
  if (signum == SIGUSR1) {
    s->got_usr1++;
  } else if (signum == SIGCHLD) {
    s->got_chld++;
  } else {
    s->errors++;
  }
  if (async_handle_close(async_signal_handle(sig), NULL) != 0) {
    s->errors++;
  }
}

static void test_signals_raised_to_self(void **state) {
  (void)state;
  struct sigs s;
  memset(&s, 0, sizeof s);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_signal_new(&s.usr1, loop, &s), 0);
  assert_int_equal(async_signal_start(s.usr1, SIGUSR1, signal_cb), 0);
  assert_int_equal(async_signal_signum(s.usr1), SIGUSR1);
  assert_int_equal(async_signal_new(&s.chld, loop, &s), 0);
  assert_int_equal(async_signal_start(s.chld, SIGCHLD, signal_cb), 0);
  assert_int_equal(async_loop_call_soon(loop, raise_cb, &s), 0);

  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s.errors, 0);
  assert_int_equal(s.got_usr1, 1);
  assert_int_equal(s.got_chld, 1);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Futures and combinators                                              */

static int g_value = 42;

struct futs {
  async_future *a, *b, *slow, *cancellable;
  int cancel_hook_calls;
  int cancel_hook_cancelled;
  int statuses[8];
  int callbacks;
  int errors;
};

static void complete_cb(async_loop *loop, void *ud) {
  (void)loop;
  struct futs *f = ud;
  if (async_future_resolve(f->a, &g_value, NULL, NULL) != 0 ||
      async_future_reject(f->b, ASYNC_EIO) != 0) {
    f->errors++;
  }
}

static void record_cb(async_future *fut, int status, void *ud) {
  (void)fut;
  struct futs *f = ud;
  if (f->callbacks < 8) {
    f->statuses[f->callbacks] = status;
  }
  f->callbacks++;
}

static void cancel_hook(async_future *fut, int cancelled, void *ud) {
  (void)fut;
  struct futs *f = ud;
  f->cancel_hook_calls++;
  f->cancel_hook_cancelled = cancelled;
}

static void test_futures_and_combinators(void **state) {
  (void)state;
  struct futs f;
  memset(&f, 0, sizeof f);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_future_new(&f.a, loop), 0);
  assert_int_equal(async_future_new(&f.b, loop), 0);
  assert_int_equal(async_future_new(&f.slow, loop), 0);
  assert_int_equal(async_future_new(&f.cancellable, loop), 0);

  async_future *pair[2] = {f.a, f.b};
  async_future *all = NULL, *any = NULL, *in_time = NULL, *late = NULL;
  assert_int_equal(async_future_all(&all, loop, pair, 2), 0);
  assert_int_equal(async_future_any(&any, loop, pair, 2), 0);
  assert_int_equal(async_future_timeout(&in_time, f.a, 10000), 0);
  assert_int_equal(async_future_timeout(&late, f.slow, 10), 0);
  assert_int_equal(async_future_add_callback(f.a, record_cb, &f), 0);

  /* a resolves and b fails from a later callback. */
  assert_int_equal(async_loop_call_soon(loop, complete_cb, &f), 0);
  assert_int_equal(async_loop_run_until(loop, all), ASYNC_EIO);
  assert_int_equal(async_loop_run_until(loop, any), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, any), 0);
  assert_ptr_equal(value, f.a); /* a completed first */
  assert_int_equal(async_loop_run_until(loop, in_time), 0);
  assert_int_equal(async_future_result(&value, in_time), 0);
  assert_ptr_equal(value, &g_value);
  assert_int_equal(async_loop_run_until(loop, late), ASYNC_ETIMEDOUT);
  assert_int_equal(async_future_get_state(f.slow), ASYNC_FUTURE_CANCELLED);

  /* Cancel: the producer hook runs now, done callbacks get ECANCELED. */
  assert_int_equal(async_future_set_cancel(f.cancellable, cancel_hook, &f), 0);
  assert_int_equal(async_future_add_callback(f.cancellable, record_cb, &f), 0);
  assert_int_equal(async_future_cancel(f.cancellable), 1);
  assert_int_equal(f.cancel_hook_calls, 1);
  assert_int_equal(f.cancel_hook_cancelled, 1);
  assert_int_equal(async_loop_run_until(loop, f.cancellable), ASYNC_ECANCELED);
  assert_int_equal(async_future_cancel(f.cancellable), 0);

  async_future *everything[] = {f.a, f.b, f.slow, f.cancellable, all, any, in_time, late};
  for (size_t i = 0; i < sizeof everything / sizeof everything[0]; i++) {
    assert_int_equal(async_future_free(everything[i]), 0);
  }
  tu_finish(loop);
  assert_int_equal(f.errors, 0);
  assert_int_equal(f.callbacks, 2);
  assert_int_equal(f.statuses[0], 0);
  assert_int_equal(f.statuses[1], ASYNC_ECANCELED);
}

/* ------------------------------------------------------------------ */
/* run_until                                                            */

static void resolve_later(async_timer *t, void *ud) {
  if (async_future_resolve(ud, &g_value, NULL, NULL) != 0) {
    return; /* run_until would then report ASYNC_ESTATE */
  }
  async_handle_close(async_timer_handle(t), NULL);
}

static void test_run_until(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *fut = NULL;
  assert_int_equal(async_future_new(&fut, loop), 0);
  tu_timer_start(loop, fut, 20, 0, resolve_later);
  assert_int_equal(async_loop_run_until(loop, fut), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, fut), 0);
  assert_ptr_equal(value, &g_value);
  assert_int_equal(async_future_free(fut), 0);

  /* Nothing can complete this one: the loop runs out of work. */
  assert_int_equal(async_future_new(&fut, loop), 0);
  assert_int_equal(async_loop_run_until(loop, fut), ASYNC_ESTATE);
  assert_int_equal(async_future_free(fut), 0);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Datagrams                                                            */

static void dgram_got(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr,
                      size_t addrlen, void *ud) {
  (void)data;
  (void)len;
  (void)addr;
  (void)addrlen;
  (*(int *)ud)++;
  async_datagram_close(d);
}

static void dgram_lost(async_datagram *d, int err, void *ud) {
  (void)d;
  (void)err;
  (void)ud;
}

/* A UDP datagram on loopback, open to close: no thread either. */
static void test_datagram(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_datagram_protocol p = ASYNC_DATAGRAM_PROTOCOL_INIT;
  p.datagram_received = dgram_got;
  p.connection_lost = dgram_lost;
  int got = 0;
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = "127.0.0.1:0";
  async_datagram *rx = NULL, *tx = NULL;
  assert_int_equal(async_udp_open(&rx, loop, &o, &p, &got), 0);
  assert_int_equal(async_udp_open(&tx, loop, &o, &p, &got), 0);
  char to[ASYNC_ADDR_STRLEN];
  struct sockaddr_storage ss;
  int len = async_datagram_sockname((struct sockaddr *)&ss, sizeof ss, rx);
  assert_true(async_addr_format(to, sizeof to, (struct sockaddr *)&ss, (size_t)len, 0) > 0);
  assert_int_equal(async_datagram_sendto(tx, "x", 1, to), 0);
  assert_int_equal(async_datagram_close(tx), 0);
  tu_finish(loop);
  assert_int_equal(got, 1);
}

/* ------------------------------------------------------------------ */
/* After all of it: one thread, dispositions unchanged                  */

/* The first thread of tids[n] not there before the first test, or 0. */
static pid_t new_tid(const pid_t *tids, int n) {
  for (int i = 0; i < n; i++) {
    if (!tid_listed(tids[i], g_initial_tids, g_initial_ntids)) {
      return tids[i];
    }
  }
  return 0;
}

static void test_one_thread_and_signals_untouched(void **state) {
  (void)state;
  /* pthread_join() returns when the kernel clears the joined thread's tid,
   * a moment before the task leaves the thread group: allow for that. */
  pid_t tids[MAX_TIDS];
  int n = 0;
  pid_t extra = 0;
  for (int i = 0; i < 200; i++) {
    n = list_tids(tids);
    assert_true(n > 0);
    extra = new_tid(tids, n);
    if (extra == 0) {
      break;
    }
    tu_sleep_ms(10);
  }
  if (extra != 0) {
    char path[64], name[64] = "?";
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)extra);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      if (fgets(name, sizeof name, f) != NULL) {
        name[strcspn(name, "\n")] = '\0';
      }
      fclose(f);
    }
    fail_msg("thread %d (%s) was not there before the first test", (int)extra, name);
  }

  struct sigaction sa;
  assert_int_equal(sigaction(SIGCHLD, NULL, &sa), 0);
  assert_true(sa.sa_handler == SIG_DFL);
  for (int sig = 1; sig < NSIG; sig++) {
    int rc = sigaction(sig, NULL, &sa);
    assert_int_equal(rc, g_initial_rc[sig]);
    if (rc == 0 && sa.sa_handler != g_initial[sig].sa_handler) {
      fail_msg("disposition of signal %d (%s) changed", sig, strsignal(sig));
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loop_and_call_soon),
      cmocka_unit_test(test_post_from_user_thread),
      cmocka_unit_test(test_timers),
      cmocka_unit_test(test_watcher_on_pipe),
      cmocka_unit_test(test_hooks),
      cmocka_unit_test(test_signals_raised_to_self),
      cmocka_unit_test(test_futures_and_combinators),
      cmocka_unit_test(test_run_until),
      cmocka_unit_test(test_datagram),
      /* Must stay last. */
      cmocka_unit_test(test_one_thread_and_signals_untouched),
  };
  return cmocka_run_group_tests(tests, snapshot_process, NULL);
}
