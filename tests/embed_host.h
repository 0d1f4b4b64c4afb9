/*
 * Work for a host loop that drives a libasync loop through async_loop_fd()
 * alone (test_embed.c: poll() and epoll hosts; test_embed_glib.c: a GLib
 * GMainLoop). Every piece is set up by a call between two runs of the loop
 * (the libuv#1565 case: libev applies watcher changes only inside its next
 * poll), some by callbacks, some by threads while the host sleeps. The host
 * waits with no timeout of its own; a 5 s library timer (it too only fires
 * through the fd) bounds each scenario. Static inline functions only.
 */
#ifndef LIBASYNC_EMBED_HOST_H
#define LIBASYNC_EMBED_HOST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

#include "test_util.h"

struct eh {
  async_loop *loop;
  int fd;           /* async_loop_fd() */
  int done;         /* the scenario finished (or the guard fired) */
  int timed_out;    /* the guard fired */
  async_timer *guard;
  long wakeups;     /* host wake-ups, counted by the host */
  /* timers */
  async_timer *t1, *t2;
  int t2_fired;
  /* posts */
  pthread_t thread;
  int thread_started;
  atomic_int posts_seen;
  /* watcher started between runs, its pipe written by a thread later */
  int pipe_fd[2];
  async_watcher *watcher;
  int watcher_fired;
  /* TCP echo served by the loop to a blocking client thread */
  async_server *server;
  int port;
  int echo_ok;
  /* pending parts: the scenario is done when none is left */
  int pending;
};

#define EH_POSTS 100

static inline void eh_part_done(struct eh *h) {
  if (--h->pending == 0) h->done = 1;
}

static inline void eh_guard_cb(async_timer *t, void *ud) {
  (void)t;
  struct eh *h = ud;
  h->timed_out = 1;
  h->done = 1;
}

/* A fresh loop, its fd and the guard. */
static inline void eh_init(struct eh *h) {
  memset(h, 0, sizeof *h);
  h->pipe_fd[0] = h->pipe_fd[1] = -1;
  h->loop = tu_loop_new();
  assert_int_equal(async_loop_fd(&h->fd, h->loop), 0);
  assert_true(h->fd >= 0);
  h->guard = tu_timer_start(h->loop, h, 5000, 0, eh_guard_cb);
  assert_int_equal(async_handle_unref(async_timer_handle(h->guard)), 0);
}

/* ---- timers: t1 (20 ms) started between runs; its callback starts t2 ---- */

static inline void eh_t2_cb(async_timer *t, void *ud) {
  (void)t;
  struct eh *h = ud;
  h->t2_fired++;
  eh_part_done(h);
}

static inline void eh_t1_cb(async_timer *t, void *ud) {
  (void)t;
  struct eh *h = ud;
  async_timer_start(h->t2, 20, 0, eh_t2_cb);
}

static inline void eh_add_timers(struct eh *h) {
  h->pending++;
  h->t2 = tu_timer_new(h->loop, h);
  h->t1 = tu_timer_start(h->loop, h, 20, 0, eh_t1_cb);
}

/* ---- posts from a thread that starts while the host sleeps ---- */

static inline void eh_post_cb(async_loop *loop, void *ud) {
  (void)loop;
  struct eh *h = ud;
  if (atomic_fetch_add(&h->posts_seen, 1) + 1 == EH_POSTS) eh_part_done(h);
}

static inline void *eh_poster(void *arg) {
  struct eh *h = arg;
  tu_sleep_ms(30);
  for (int i = 0; i < EH_POSTS; i++) {
    if (i == EH_POSTS / 2) tu_sleep_ms(10);
    if (async_loop_post(h->loop, eh_post_cb, h) != 0) break;
  }
  return NULL;
}

/* ---- a watcher started between runs; a thread writes its pipe later ---- */

static inline void eh_watcher_cb(async_watcher *w, uint32_t events, void *ud) {
  (void)events;
  struct eh *h = ud;
  char c;
  if (read(h->pipe_fd[0], &c, 1) == 1 && h->watcher_fired++ == 0) eh_part_done(h);
  async_watcher_stop(w);
}

static inline void *eh_pipe_writer(void *arg) {
  struct eh *h = arg;
  tu_sleep_ms(60);
  if (write(h->pipe_fd[1], "x", 1) != 1) return NULL;
  return NULL;
}

/* ---- TCP echo: the loop serves a blocking client on a thread ---- */

static inline void *eh_client(void *arg) {
  struct eh *h = arg;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)h->port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char buf[5] = {0};
  size_t got = 0;
  if (connect(s, (struct sockaddr *)&a, sizeof a) == 0 && write(s, "hello", 5) == 5) {
    ssize_t n;
    while (got < 5 && (n = read(s, buf + got, 5 - got)) > 0) got += (size_t)n;
  }
  close(s);
  h->echo_ok = got == 5 && memcmp(buf, "hello", 5) == 0;
  return NULL;
}

/* Everything a thread does, one thread after another: posts, the pipe,
 * the echo client; then one last post ends the thread part. */
static inline void eh_threads_done(async_loop *loop, void *ud) {
  (void)loop;
  eh_part_done(ud);
}

static inline void *eh_thread_main(void *arg) {
  struct eh *h = arg;
  eh_poster(h);
  eh_pipe_writer(h);
  eh_client(h);
  async_loop_post(h->loop, eh_threads_done, h);
  return NULL;
}

/* Sets up timers, the watcher, the server and the thread; all between runs. */
static inline void eh_start_all(struct eh *h) {
  eh_add_timers(h);
  assert_int_equal(pipe(h->pipe_fd), 0);
  h->watcher = tu_watcher_new(h->loop, h->pipe_fd[0], h);
  assert_int_equal(async_watcher_start(h->watcher, ASYNC_READABLE, eh_watcher_cb), 0);
  h->pending += 3; /* posts, watcher, thread part (echo) */
  h->server = tu_echo_server(h->loop, "127.0.0.1", 0);
  h->port = async_server_port(h->server);
  assert_true(h->port > 0);
  assert_int_equal(pthread_create(&h->thread, NULL, eh_thread_main, h), 0);
  h->thread_started = 1;
}

/* Checks the outcome, closes everything (driving the loop with NOWAIT and
 * the fd, bounded) and frees the loop. */
static inline void eh_finish(struct eh *h) {
  if (h->thread_started) pthread_join(h->thread, NULL);
  assert_false(h->timed_out);
  if (h->t1) {
    assert_int_equal(h->t2_fired, 1);
    tu_close(async_timer_handle(h->t1));
    tu_close(async_timer_handle(h->t2));
  }
  if (h->watcher) {
    assert_int_equal(h->watcher_fired, 1);
    tu_close(async_watcher_handle(h->watcher));
    tu_close_pair(h->pipe_fd);
  }
  if (h->server) {
    assert_int_equal(atomic_load(&h->posts_seen), EH_POSTS);
    assert_true(h->echo_ok);
    assert_int_equal(async_handle_close(async_server_handle(h->server), NULL), 0);
  }
  tu_close(async_timer_handle(h->guard));
  uint64_t t0 = tu_now_ns();
  while (async_loop_run(h->loop, ASYNC_RUN_NOWAIT) != 0) {
    assert_true(tu_elapsed_ms(t0) < 3000);
    tu_sleep_ms(1);
  }
  assert_int_equal(async_loop_free(h->loop), 0);
}

#endif
