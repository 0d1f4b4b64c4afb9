/*
 * LIBEV_FLAGS picks the readiness backend of new loops (async/loop.h):
 * 1 select, 2 poll, 4 epoll; unset or anything else, epoll.
 * scripts/test.sh runs the unit suite under each of the three.
 *
 * Seen from outside, without strace: the system call the loop's thread
 * blocks in (/proc/self/task/TID/syscall, read by a second thread while
 * the loop waits, which then wakes it) and whether creating the loop
 * opened an epoll instance (/proc/self/fd).
 */
#include "test_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* The backend a blocking system call belongs to, or 0 for any other call
 * (the raw calls differ per architecture; glibc may use either form). */
static int backend_of_syscall(long nr) {
#ifdef SYS_select
  if (nr == SYS_select) return TU_SELECT;
#endif
#ifdef SYS_poll
  if (nr == SYS_poll) return TU_POLL;
#endif
#ifdef SYS_epoll_wait
  if (nr == SYS_epoll_wait) return TU_EPOLL;
#endif
#ifdef SYS_epoll_pwait2
  if (nr == SYS_epoll_pwait2) return TU_EPOLL;
#endif
  if (nr == SYS_pselect6) return TU_SELECT;
  if (nr == SYS_ppoll) return TU_POLL;
  if (nr == SYS_epoll_pwait) return TU_EPOLL;
  return 0;
}

/* Open epoll instances of this process. */
static int count_epoll_fds(void) {
  DIR *dir = opendir("/proc/self/fd");
  if (dir == NULL) {
    return -1;
  }
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    char path[300], target[64];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(path, target, sizeof target - 1);
    if (len > 0) {
      target[len] = '\0';
      n += strcmp(target, "anon_inode:[eventpoll]") == 0;
    }
  }
  closedir(dir);
  return n;
}

struct observer {
  async_loop *loop;
  pid_t loop_tid;
  int backend; /* what the loop thread was seen blocked in; 0: not seen */
};

/* Reads the loop thread's current system call until it is a poll of some
 * backend (at most 3 s), then wakes the loop. */
static void *observe(void *arg) {
  struct observer *o = arg;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)o->loop_tid);
  uint64_t end = tu_now_ms() + 3000;
  while (o->backend == 0 && tu_now_ms() < end) {
    long nr = -1;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      if (fscanf(f, "%ld", &nr) != 1) {
        nr = -1; /* "running" */
      }
      fclose(f);
    }
    o->backend = backend_of_syscall(nr);
    if (o->backend == 0) {
      tu_sleep_ms(1);
    }
  }
  async_loop_wakeup(o->loop);
  return NULL;
}

/* The backend a new loop blocks in, plus 8 if creating it opened an epoll
 * instance; 100 and up when something failed. Asserts nothing: it also
 * runs in forked children. */
static int observe_new_loop(void) {
  int epolls = count_epoll_fds();
  struct observer o = {NULL, (pid_t)syscall(SYS_gettid), 0};
  if (epolls < 0 || async_loop_new(&o.loop) != 0) {
    return 100;
  }
  int opened_epoll = count_epoll_fds() > epolls;
  /* Something to wait for, so the run blocks until the observer wakes it. */
  async_timer *timeout = NULL;
  if (async_timer_new(&timeout, o.loop, NULL) != 0 || async_timer_start(timeout, 5000, 0, tu_noop_timer_cb) != 0) {
    return 101;
  }
  pthread_t th;
  if (pthread_create(&th, NULL, observe, &o) != 0) {
    return 102;
  }
  int rc = async_loop_run(o.loop, ASYNC_RUN_ONCE);
  pthread_join(th, NULL);
  if (rc != 1 || async_handle_close(async_timer_handle(timeout), NULL) != 0 ||
      async_loop_run(o.loop, ASYNC_RUN_DEFAULT) != 0 || async_loop_free(o.loop) != 0) {
    return 103;
  }
  return o.backend == 0 ? 104 : o.backend | (opened_epoll ? 8 : 0);
}

/* The loops of this run use the backend its LIBEV_FLAGS names. */
static void test_backend_of_this_run(void **state) {
  (void)state;
  int want = tu_backend() | (tu_backend() == TU_EPOLL ? 8 : 0);
  assert_int_equal(observe_new_loop(), want);
}

/* observe_new_loop() in a child process with LIBEV_FLAGS = value (NULL:
 * unset); its result. */
static int observe_with_flags(const char *value) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int ok = value != NULL ? setenv("LIBEV_FLAGS", value, 1) : unsetenv("LIBEV_FLAGS");
    _exit(ok == 0 ? observe_new_loop() : 105);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void test_flags_values(void **state) {
  (void)state;
  static const struct {
    const char *value;
    int seen; /* backend, plus 8 for an epoll instance */
  } cases[] = {
      {NULL, TU_EPOLL | 8},
      {"1", TU_SELECT},
      {"2", TU_POLL},
      {"4", TU_EPOLL | 8},
      {"3", TU_POLL},              /* the first of epoll, poll, select */
      {"7", TU_EPOLL | 8},
      {"16777217", TU_SELECT},     /* EVFLAG_NOENV | select: other bits ignored */
      {"128", TU_EPOLL | 8},       /* io_uring: not one libasync is tested on */
      {"8", TU_EPOLL | 8},         /* kqueue: none of the three */
      {"0", TU_EPOLL | 8},
      {"", TU_EPOLL | 8},
      {"1x", TU_EPOLL | 8},        /* not a number */
      {"select", TU_EPOLL | 8},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int seen = observe_with_flags(cases[i].value);
    if (seen != cases[i].seen) {
      fail_msg("LIBEV_FLAGS=%s: seen %d, want %d", cases[i].value ? cases[i].value : "(unset)", seen,
               cases[i].seen);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backend_of_this_run),
      cmocka_unit_test(test_flags_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
