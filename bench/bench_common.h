/*
 * Shared helpers for the libasync / libuv / libev benchmarks.
 *
 * Every benchmark executable prints exactly one machine-readable line:
 *   RESULT bench=<workload> lib=<library> key=value ...
 * which bench/run.sh parses. Errors go to stderr and exit 1.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Wall clock, monotonic, in seconds. */
static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time (user + system, all threads) of this process so far, in seconds. */
static inline double bench_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time (user + system) of this process and of its children reaped so
 * far, in seconds: what a parent and the children it ran cost together. */
static inline double bench_cpu_with_children(void) {
  struct rusage self, children;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  const struct timeval *t[] = {&self.ru_utime, &self.ru_stime, &children.ru_utime, &children.ru_stime};
  double sum = 0;
  for (int i = 0; i < 4; i++) sum += (double)t[i]->tv_sec + (double)t[i]->tv_usec * 1e-6;
  return sum;
}

/* Peak resident set size of this process, in MiB (ru_maxrss is in KiB on Linux). */
static inline double bench_maxrss_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

/* Threads of this process right now (/proc/self/status), or -1. */
static inline int bench_threads(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int threads = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %d", &threads) == 1) break;
  if (f) fclose(f);
  return threads;
}

/* Raises the soft RLIMIT_NOFILE to at least want fds; exits when the hard limit is lower. */
static inline void bench_raise_nofile(long want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    perror("getrlimit");
    exit(1);
  }
  if (rl.rlim_cur >= (rlim_t)want) return;
  if (rl.rlim_max < (rlim_t)want) {
    fprintf(stderr, "RLIMIT_NOFILE hard limit %lu is below %ld\n", (unsigned long)rl.rlim_max, want);
    exit(1);
  }
  rl.rlim_cur = (rlim_t)want;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    perror("setrlimit");
    exit(1);
  }
}

/*
 * With BENCH_PIN=1 in the environment, pins the calling thread to one CPU
 * (modulo the CPU count), so the cross-thread ping-pong always crosses
 * cores: unpinned, the scheduler sometimes puts both threads on one core
 * and the rate roughly doubles. Not the default: on a machine busy with
 * other work, a pinned thread waits for its CPU and a run can take 10x
 * longer. The files using it define _GNU_SOURCE before any include.
 */
#ifdef _GNU_SOURCE
static inline void bench_pin_thread(int cpu) {
  const char *pin = getenv("BENCH_PIN");
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (!pin || pin[0] != '1' || ncpu < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % ncpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
#endif

/*
 * The ping-pong stops early after this many seconds (checked every 1024
 * round trips) and reports the rate over the round trips it completed, so
 * a busy machine cannot stretch the run without bound.
 */
#define BENCH_PINGPONG_MAX_SECONDS 12.0

/* Exits when expr (a status: negative = error) fails. */
#define BENCH_CHECK(expr)                                                         \
  do {                                                                            \
    long bench_rc_ = (long)(expr);                                                \
    if (bench_rc_ < 0) {                                                          \
      fprintf(stderr, "%s:%d: %s failed: %ld\n", __FILE__, __LINE__, #expr,       \
              bench_rc_);                                                         \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

#define BENCH_ASSERT(cond)                                                        \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

#endif
