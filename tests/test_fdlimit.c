/*
 * Out of file descriptors (DESIGN §2: bad conditions are error codes, never
 * a crash). libev and c-ares have no error return where they create fds
 * lazily: libev aborts ("error creating signal/async pipe"), c-ares
 * silently drops /etc/resolv.conf. Every call that needs an fd must return
 * ASYNC_EMFILE instead, leave nothing open, and work once fds are back;
 * calls that need none must work with none free.
 *
 * Each case runs in a forked child with RLIMIT_NOFILE lowered and every fd
 * below it taken but `free` of them (the highest numbers, so whatever the
 * library opens lands there). The child checks without cmocka and exits
 * with 0 or 1 (the failed check on stderr); an abort fails the case in the
 * parent instead of killing the suite.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define FD_LIMIT 64

/* async_loop_new(): "The loop uses 2 file descriptors" (epoll and an
 * eventfd); "Under select and poll the loop uses 1". */
static int loop_fds(void) { return tu_backend() == TU_EPOLL ? 2 : 1; }

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                              \
    }                                                                        \
  } while (0)

/* The fds the child holds, and the ones it left free. */
struct fill {
  int held[FD_LIMIT];
  int nheld;
  int freed[FD_LIMIT];
  int nfreed;
};

/* Frees held fds until at least n are free. */
static void free_up_to(struct fill *f, int n) {
  while (f->nfreed < n && f->nheld > 0) {
    int fd = f->held[--f->nheld];
    close(fd);
    f->freed[f->nfreed++] = fd;
  }
}

/* Takes every fd below FD_LIMIT, then closes the free highest ones. */
static int fill_fds(struct fill *f, int free_fds) {
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  rl.rlim_cur = FD_LIMIT; /* the hard limit stays (valgrind refuses changing it) */
  CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
  memset(f, 0, sizeof *f);
  int fd = -1;
  while (f->nheld < FD_LIMIT && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) f->held[f->nheld++] = fd;
  CHECK(fd < 0 && errno == EMFILE);
  CHECK(f->nheld >= free_fds);
  free_up_to(f, free_fds);
  return 0;
}

/* Every fd the child left free is still free: nothing was left open. */
static int all_free(const struct fill *f) {
  for (int i = 0; i < f->nfreed; i++) {
    if (fcntl(f->freed[i], F_GETFD) != -1) {
      fprintf(stderr, "child: fd %d left open\n", f->freed[i]);
      return 0;
    }
  }
  return 1;
}

/* No fd at all can be opened now. */
static int none_free(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return fd < 0 && errno == EMFILE;
}

static void release_fds(struct fill *f) {
  while (f->nheld > 0) close(f->held[--f->nheld]);
}

typedef int (*child_fn)(struct fill *f);

/* Runs body in a child with free_fds fds free; fails on an abort (or any
 * signal) or a failed check. */
static void run_child(child_fn body, int free_fds, const char *what) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(20); /* a hang ends as SIGALRM */
    struct fill f;
    int rc = fill_fds(&f, free_fds);
    if (rc == 0) rc = body(&f);
    release_fds(&f); /* the sanitizers' exit checks need fds */
    exit(rc);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) assert_int_equal(errno, EINTR);
  if (WIFSIGNALED(st)) {
    fail_msg("%s, %d fds free: killed by signal %d (%s)", what, free_fds, WTERMSIG(st), strsignal(WTERMSIG(st)));
  }
  if (WEXITSTATUS(st) != 0) fail_msg("%s, %d fds free: a check failed (see above)", what, free_fds);
}

static void count_cb(async_loop *loop, void *ud) {
  (void)loop;
  (*(int *)ud)++;
}

/* ---- async_loop_new at every count of free fds --------------------------- */

/* The loop runs callbacks queued on its thread and posted ones. */
static int loop_works(async_loop *loop) {
  int soon = 0, posted = 0;
  CHECK(async_loop_call_soon(loop, count_cb, &soon) == 0);
  CHECK(async_loop_post(loop, count_cb, &posted) == 0);
  CHECK(async_loop_wakeup(loop) == 0);
  CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT) == 0);
  CHECK(soon == 1 && posted == 1);
  return 0;
}

static int child_loop_new(struct fill *f) {
  async_loop *loop = NULL;
  int rc = async_loop_new(&loop);
  if (f->nfreed < loop_fds()) {
    CHECK(rc == ASYNC_EMFILE);
    CHECK(all_free(f));
    free_up_to(f, loop_fds()); /* the failure left nothing behind to trip on */
    CHECK(async_loop_new(&loop) == 0);
  } else {
    CHECK(rc == 0);
  }
  if (loop_works(loop)) return 1;
  CHECK(async_loop_free(loop) == 0);
  CHECK(all_free(f));
  return 0;
}

static void test_loop_new_every_free_count(void **state) {
  (void)state;
  for (int free_fds = 0; free_fds <= loop_fds() + 1; free_fds++) run_child(child_loop_new, free_fds, "async_loop_new");
}

/* Failing many times leaves nothing behind either. */
static int child_loop_new_repeated(struct fill *f) {
  for (int i = 0; i < 100; i++) {
    async_loop *loop = NULL;
    CHECK(async_loop_new(&loop) == ASYNC_EMFILE);
  }
  CHECK(all_free(f));
  return 0;
}

static void test_loop_new_fails_repeatedly(void **state) {
  (void)state;
  run_child(child_loop_new_repeated, loop_fds() - 1, "async_loop_new x100");
}

/* ---- calls that need no fd of their own, with none free ------------------ */

static void signal_cb(async_signal *s, int signum, void *ud) {
  (void)s;
  (void)signum;
  (*(int *)ud)++;
}

/* The loop took the last fds; a signal watcher needs none more. */
static int child_signal(struct fill *f) {
  (void)f;
  async_loop *loop = NULL;
  CHECK(async_loop_new(&loop) == 0);
  CHECK(none_free());
  async_signal *sig = NULL;
  int got = 0;
  CHECK(async_signal_new(&sig, loop, &got) == 0);
  CHECK(async_signal_start(sig, SIGUSR1, signal_cb) == 0);
  CHECK(raise(SIGUSR1) == 0);
  for (int i = 0; i < 100 && !got; i++) async_loop_run(loop, ASYNC_RUN_NOWAIT);
  CHECK(got == 1);
  CHECK(async_handle_close(async_signal_handle(sig), NULL) == 0);
  CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT) == 0);
  CHECK(async_loop_free(loop) == 0);
  return 0;
}

static void test_signal_start_no_fd_free(void **state) {
  (void)state;
  run_child(child_signal, loop_fds(), "async_signal_start");
}

struct poster {
  async_loop *loop;
  int posted;
};

static void stop_cb(async_loop *loop, void *ud) {
  (*(int *)ud)++;
  async_loop_stop(loop);
}

/* Posts and wakes the loop from another thread while it is blocked. */
static void *poster_main(void *arg) {
  struct poster *p = arg;
  tu_sleep_ms(20);
  async_loop_wakeup(p->loop);
  tu_sleep_ms(20);
  async_loop_post(p->loop, stop_cb, &p->posted);
  return NULL;
}

static int child_post(struct fill *f) {
  (void)f;
  struct poster p = {NULL, 0};
  CHECK(async_loop_new(&p.loop) == 0);
  CHECK(none_free());
  /* Keeps run(DEFAULT) blocked until the post stops it; bounds it too. */
  async_timer *bound = NULL;
  CHECK(async_timer_new(&bound, p.loop, NULL) == 0);
  CHECK(async_timer_start(bound, 5000, 0, tu_stop_loop_cb) == 0);
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, poster_main, &p) == 0);
  uint64_t t0 = tu_now_ns();
  async_loop_run(p.loop, ASYNC_RUN_DEFAULT);
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK(p.posted == 1);
  CHECK(tu_elapsed_ms(t0) < 2500.0);
  CHECK(async_handle_close(async_timer_handle(bound), NULL) == 0);
  CHECK(async_loop_run(p.loop, ASYNC_RUN_DEFAULT) == 0);
  CHECK(async_loop_free(p.loop) == 0);
  return 0;
}

static void test_post_wakeup_no_fd_free(void **state) {
  (void)state;
  run_child(child_post, loop_fds(), "async_loop_post/wakeup from a thread");
}

/* ---- DNS: the channel is made by the first lookup ------------------------ */

/* With no fd to read resolv.conf with, the first lookup fails with
 * ASYNC_EMFILE (c-ares would build its channel from defaults instead);
 * reverse lookups too. One fd back, lookups start again. */
static int child_dns(struct fill *f) {
  async_loop *loop = NULL;
  CHECK(async_loop_new(&loop) == 0);
  CHECK(none_free());
  async_future *future = NULL;
  CHECK(async_getaddrinfo(&future, loop, "fdlimit.example", NULL, AF_UNSPEC, 0, 0) == ASYNC_EMFILE);
  CHECK(future == NULL);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(80)};
  CHECK(inet_pton(AF_INET, "192.0.2.1", &addr.sin_addr) == 1);
  CHECK(async_getnameinfo(&future, loop, (const struct sockaddr *)&addr, sizeof addr, 0) == ASYNC_EMFILE);
  CHECK(future == NULL);
  /* With an fd back the channel is made and the lookup starts (its query
   * goes to the local discard port; freeing the future cancels it). */
  CHECK(async_dns_set_servers(loop, "127.0.0.1:9") == 0);
  free_up_to(f, f->nfreed + 1);
  CHECK(async_getaddrinfo(&future, loop, "fdlimit.example", NULL, AF_UNSPEC, 0, 0) == 0);
  CHECK(async_future_free(future) == 0);
  CHECK(async_loop_free(loop) == 0);
  CHECK(all_free(f));
  return 0;
}

static void test_dns_channel_no_fd_free(void **state) {
  (void)state;
  run_child(child_dns, loop_fds(), "async_getaddrinfo");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loop_new_every_free_count),
      cmocka_unit_test(test_loop_new_fails_repeatedly),
      cmocka_unit_test(test_signal_start_no_fd_free),
      cmocka_unit_test(test_post_wakeup_no_fd_free),
      cmocka_unit_test(test_dns_channel_no_fd_free),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
