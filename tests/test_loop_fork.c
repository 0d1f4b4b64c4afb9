/*
 * async_loop_fork (async/loop.h): a loop with live watchers, a repeating
 * timer, a listening server, a queued call_soon and a DNS lookup in flight
 * (a responder of dns_fixture.h answering after a delay) is forked; the
 * child calls async_loop_fork() and uses all of them; the parent, which
 * makes no call, uses them afterwards as if nothing happened. And the
 * child's epoll is its own: an fd it watches never shows in the parent's.
 *
 * The child reports through its exit code (no cmocka in the child: a
 * failure there would longjmp through the library in another process).
 */
#include "test_util.h"
#include "dns_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct world {
  async_loop *loop;
  async_timer *timer;
  async_watcher *watcher;
  async_server *server;
  async_future *lookup;
  int pipe_fds[2];
  int ticks;
  int readable;
  int soon_ran;
};

static void tick(async_timer *t, void *ud) {
  (void)t;
  ((struct world *)ud)->ticks++;
}

static void on_readable(async_watcher *w, uint32_t events, void *ud) {
  (void)w, (void)events;
  struct world *wd = ud;
  char c;
  if (read(wd->pipe_fds[0], &c, 1) == 1) wd->readable++;
}

static void soon(async_loop *loop, void *ud) {
  (void)loop;
  ((struct world *)ud)->soon_ran++;
}

/* NOWAIT iterations until cond(w) or ms pass; returns cond(w). */
static int run_while(struct world *w, int (*cond)(struct world *), uint64_t ms) {
  uint64_t t0 = tu_now_ms();
  while (!cond(w) && tu_now_ms() - t0 < ms) {
    async_loop_run(w->loop, ASYNC_RUN_NOWAIT);
    if (!cond(w)) tu_sleep_ms(1);
  }
  return cond(w);
}

static int lookup_done(struct world *w) { return async_future_get_state(w->lookup) != ASYNC_FUTURE_PENDING; }
static int three_ticks(struct world *w) { return w->ticks >= 3; }
static int was_readable(struct world *w) { return w->readable > 0; }

/* The lookup answered 192.0.2.7: 1, else 0. */
static int lookup_ok(struct world *w) {
  if (async_future_result(NULL, w->lookup) != 0) return 0;
  async_addrinfo *list = NULL;
  if (async_addrinfo_take(&list, w->lookup) != 0) return 0;
  const struct sockaddr *sa = NULL;
  int ok = async_addrinfo_count(list) >= 1 && async_addrinfo_addr(&sa, list, 0) > 0 &&
           ((const struct sockaddr_in *)sa)->sin_addr.s_addr == inet_addr("192.0.2.7");
  async_addrinfo_free(list);
  return ok;
}

/* A connection to the server echoes "ping": 1, else 0. */
static int echo_ok(struct world *w) {
  int port = async_server_port(w->server);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 && errno != EINPROGRESS)) return 0;
  char buf[8];
  ssize_t got = -1;
  int sent = 0;
  uint64_t t0 = tu_now_ms();
  while (got != 4 && tu_now_ms() - t0 < 3000) {
    if (!sent) sent = send(fd, "ping", 4, MSG_NOSIGNAL) == 4;
    async_loop_run(w->loop, ASYNC_RUN_NOWAIT);
    got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (got != 4) tu_sleep_ms(1);
  }
  close(fd);
  return got == 4 && memcmp(buf, "ping", 4) == 0;
}

/* Everything of w works: 0, or which part failed (1..5). */
static int use_everything(struct world *w) {
  if (!run_while(w, lookup_done, 5000)) return 1;
  if (!lookup_ok(w)) return 6;
  w->ticks = 0;
  if (!run_while(w, three_ticks, 3000)) return 2;
  if (write(w->pipe_fds[1], "x", 1) != 1 || !run_while(w, was_readable, 3000)) return 3;
  if (!echo_ok(w)) return 4;
  if (w->soon_ran != 1) return 5;
  return 0;
}

/* Whether the epoll fd of this process watches fd (its fdinfo lists "tfd: fd"). */
static int epoll_watches(int fd) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d)) && !found) {
    char path[300], target[64], line[256];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (strcmp(target, "anon_inode:[eventpoll]") != 0) continue;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%s", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    while (fgets(line, sizeof line, f)) {
      int tfd = -1;
      if (sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd) found = 1;
    }
    fclose(f);
  }
  closedir(d);
  return found;
}

static void test_fork_with_everything_live(void **state) {
  (void)state;
  struct dnsfx_responder r;
  struct dnsfx_family a = {"192.0.2.7", 400};
  struct dnsfx_family aaaa = {"", 400};
  assert_int_equal(dnsfx_responder_start(&r, &a, &aaaa), 0);

  struct world w = {0};
  w.loop = tu_loop_new();
  assert_int_equal(async_dns_set_servers(w.loop, r.servers), 0);
  assert_int_equal(async_dns_set_hosts_file(w.loop, ""), 0);
  assert_int_equal(async_dns_set_search(w.loop, "", 1), 0);
  w.timer = tu_timer_start(w.loop, &w, 10, 10, tick);
  assert_int_equal(pipe2(w.pipe_fds, O_CLOEXEC), 0);
  w.watcher = tu_watcher_new(w.loop, w.pipe_fds[0], &w);
  assert_int_equal(async_watcher_start(w.watcher, ASYNC_READABLE, on_readable), 0);
  w.server = tu_echo_server(w.loop, "127.0.0.1", 0);
  assert_int_equal(async_getaddrinfo(&w.lookup, w.loop, "forked.test", NULL, ASYNC_AF_INET, 0, 0), 0);
  /* The query goes out; the answer comes 400 ms later. */
  uint64_t t0 = tu_now_ms();
  do {
    async_loop_run(w.loop, ASYNC_RUN_NOWAIT); /* at least once: the watchers are in the epoll set then */
    tu_sleep_ms(1);
  } while (dnsfx_responder_queries(&r, DNSFX_TYPE_A) < 1 && tu_now_ms() - t0 < 2000);
  assert_int_equal(dnsfx_responder_queries(&r, DNSFX_TYPE_A), 1);
  assert_int_equal(async_future_get_state(w.lookup), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_loop_call_soon(w.loop, soon, &w), 0);

  /* The child signals through ready once its own watcher on fd 200 runs,
   * then waits for go before it exits. */
  /* The epoll checks apply to the epoll backend (select and poll keep no
   * kernel state to share: nothing there to re-create). */
  int epoll = tu_backend() == TU_EPOLL;
  assert_int_equal(epoll_watches(w.pipe_fds[0]), epoll);
  int ready[2], go[2];
  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(go), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(ready[0]);
    close(go[1]);
    int rc = async_loop_fork(w.loop) == 0 ? use_everything(&w) : 10;
    /* A watcher on an fd only the child has. */
    int p[2];
    if (!rc && (pipe(p) < 0 || dup2(p[0], 200) < 0)) rc = 11;
    async_watcher *own = NULL;
    if (!rc && (async_watcher_new(&own, w.loop, 200, &w) != 0 ||
                async_watcher_start(own, ASYNC_READABLE, tu_noop_watcher_cb) != 0))
      rc = 12;
    if (!rc) async_loop_run(w.loop, ASYNC_RUN_NOWAIT);
    char c = (char)rc;
    if (write(ready[1], &c, 1) != 1) rc = 13;
    if (read(go[0], &c, 1) != 1) rc = 14;
    _exit(rc);
  }
  close(ready[1]);
  close(go[0]);
  char c = 99;
  assert_int_equal(read(ready[0], &c, 1), 1);
  assert_int_equal(c, 0);
  /* The child's epoll is not ours: its fd 200 is not in our epoll. */
  assert_false(epoll_watches(200));
  assert_int_equal(epoll_watches(w.pipe_fds[0]), epoll); /* ... and our own fds still are */
  assert_int_equal(write(go[1], "g", 1), 1);
  int status = 0;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* The child sent the lookup again from its own channel. */
  assert_int_equal(dnsfx_responder_queries(&r, DNSFX_TYPE_A), 2);

  /* The parent, which made no call, is unaffected. */
  assert_int_equal(use_everything(&w), 0);
  assert_int_equal(dnsfx_responder_queries(&r, DNSFX_TYPE_A), 2);

  close(ready[0]);
  close(go[1]);
  assert_int_equal(async_future_free(w.lookup), 0);
  tu_close(async_timer_handle(w.timer));
  tu_close(async_watcher_handle(w.watcher));
  tu_server_close(w.loop, w.server);
  tu_close_pair(w.pipe_fds);
  tu_finish(w.loop);
  dnsfx_responder_stop(&r);
}

static void count_readable(async_watcher *w, uint32_t events, void *ud) {
  (void)w, (void)events;
  char c;
  if (read(200, &c, 1) == 1) ++*(int *)ud;
}

/* Waits up to ms for fd to be readable, then runs one NOWAIT iteration. */
static int wait_and_run(async_loop *loop, int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, ms) != 1) return 0;
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  return 1;
}

/* Set by a timer the parent started before the fork. */
static int inherited_fired;

/* The child's loop driven through async_loop_fd(): a timer the parent
 * started fires through the child's new timerfd, a watcher on an fd only
 * the child has makes the child's embedding fd readable (it nests the
 * child's new epoll, not the parent's). Returns 0 or a failure code. */
static int child_embedded(async_loop *loop) {
  int fd = -1, p[2], seen = 0;
  async_watcher *own = NULL;
  if (async_loop_fork(loop) != 0 || async_loop_fd(&fd, loop) != 0) return 20;
  for (int i = 0; i < 20 && !inherited_fired; i++)
    if (!wait_and_run(loop, fd, 1000)) return 28;
  if (inherited_fired != 1) return 29;
  if (pipe(p) < 0 || dup2(p[0], 200) < 0) return 21;
  if (async_watcher_new(&own, loop, 200, &seen) != 0 || async_watcher_start(own, ASYNC_READABLE, count_readable) != 0)
    return 22;
  if (!wait_and_run(loop, fd, 2000)) return 23; /* the change between runs */
  if (write(p[1], "x", 1) != 1) return 24;
  for (int i = 0; i < 5 && !seen; i++)
    if (!wait_and_run(loop, fd, 1000)) return 25;
  return seen == 1 ? 0 : 26;
}

static void test_fork_embedded(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd = -1;
  if (tu_backend() != TU_EPOLL) { /* no backend fd to nest */
    assert_int_equal(async_loop_fd(&fd, loop), ASYNC_ENOTSUP);
    tu_finish(loop);
    return;
  }
  assert_int_equal(async_loop_fd(&fd, loop), 0);
  inherited_fired = 0;
  async_timer *inherited = tu_timer_start(loop, &inherited_fired, 50, 0, tu_count_timer_cb);
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) _exit(child_embedded(loop));
  int status = 0;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* The parent's fd still works: a timer makes it readable. */
  int fired = 0;
  async_timer *t = tu_timer_start(loop, &fired, 1, 0, tu_count_timer_cb);
  for (int i = 0; i < 5 && !fired; i++) assert_true(wait_and_run(loop, fd, 1000));
  assert_int_equal(fired, 1);
  assert_int_equal(inherited_fired, 1); /* due long before: the parent's own copy fired too */
  tu_close(async_timer_handle(t));
  tu_close(async_timer_handle(inherited));
  tu_finish(loop);
}

/* The child's first run dispatches what the fork found pending: here a
 * readable watcher whose callback stops it, the loop's last reference,
 * and starts another on an fd that is readable already. The run still
 * polls once, as every NOWAIT run does, and delivers that one too. */
struct handoff {
  async_watcher *first, *second;
  int second_seen;
};

static void handoff_second(async_watcher *w, uint32_t events, void *ud) {
  (void)w, (void)events;
  ((struct handoff *)ud)->second_seen++;
}

static void handoff_first(async_watcher *w, uint32_t events, void *ud) {
  (void)w, (void)events;
  struct handoff *h = ud;
  if (async_watcher_stop(h->first) != 0 || async_watcher_start(h->second, ASYNC_READABLE, handoff_second) != 0)
    h->second_seen = -100;
}

static int child_handoff(async_loop *loop, struct handoff *h) {
  if (async_loop_fork(loop) != 0) return 30;
  if (async_loop_run(loop, ASYNC_RUN_NOWAIT) != 1) return 31; /* the second watcher holds the loop */
  return h->second_seen == 1 ? 0 : 32;
}

static void test_fork_pending_hands_off(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int p1[2], p2[2];
  assert_int_equal(pipe(p1), 0);
  assert_int_equal(pipe(p2), 0);
  struct handoff h = {0};
  h.first = tu_watcher_new(loop, p1[0], &h);
  h.second = tu_watcher_new(loop, p2[0], &h);
  assert_int_equal(async_watcher_start(h.first, ASYNC_READABLE, handoff_first), 0);
  assert_int_equal(write(p1[1], "x", 1), 1);
  assert_int_equal(write(p2[1], "y", 1), 1);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) _exit(child_handoff(loop, &h));
  int status = 0;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  tu_close(async_watcher_handle(h.first));
  tu_close(async_watcher_handle(h.second));
  tu_finish(loop);
  tu_close_pair(p1);
  tu_close_pair(p2);
}

static void test_fork_bad_input(void **state) {
  (void)state;
  assert_int_equal(async_loop_fork(NULL), ASYNC_EINVAL);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_fork((async_loop *)&loop), ASYNC_EINVAL);
  /* Without a fork it is harmless: the loop just gets new fds. */
  assert_int_equal(async_loop_fork(loop), 0);
  int fired = 0;
  async_timer *t = tu_timer_start(loop, &fired, 1, 0, tu_count_timer_cb);
  tu_run_until(loop, &fired, 1, 3000);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fork_with_everything_live),
      cmocka_unit_test(test_fork_embedded),
      cmocka_unit_test(test_fork_pending_hands_off),
      cmocka_unit_test(test_fork_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
