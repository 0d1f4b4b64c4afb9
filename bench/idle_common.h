/*
 * Shared by the idle-connection memory benchmarks (idle_async.c,
 * idle_uv.c): a counting allocator, the client child process and the
 * measurement driver.
 *
 * The server side runs in this process; a forked child opens the idle
 * client connections, so each process holds about N fds (the hard
 * RLIMIT_NOFILE may not allow 2N in one process). The library's heap is
 * counted through its allocator hook: requested bytes (no allocator
 * overhead), live blocks, and live blocks per size, so the growth can be
 * split into per-connection objects and shared arrays.
 */
#ifndef IDLE_COMMON_H
#define IDLE_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_common.h"

#define IDLE_DEFAULT_CONNS 10000
/* Gives up when the connections are not all up after this long. */
#define IDLE_MAX_SECONDS 60.0

/* ---- counting allocator ------------------------------------------------ */

/* The header keeps the size and the user pointer aligned like malloc's. */
#define IDLE_HDR 16u
/* Live blocks per requested size: open addressing, sizes seen are few. */
#define IDLE_SIZES 4096u

struct idle_size_count {
  size_t size; /* 0: empty slot */
  long live;
};

struct idle_heap {
  long bytes;  /* requested bytes live */
  long blocks; /* blocks live */
  struct idle_size_count sizes[IDLE_SIZES];
};

static struct idle_heap idle_live;
/* The library may allocate on other threads (libuv's thread pool). */
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;

static inline void idle_count(size_t size, long delta) {
  idle_live.bytes += delta * (long)size;
  idle_live.blocks += delta;
  size_t i = (size * 2654435761u) % IDLE_SIZES;
  while (idle_live.sizes[i].size != 0 && idle_live.sizes[i].size != size) i = (i + 1) % IDLE_SIZES;
  idle_live.sizes[i].size = size;
  idle_live.sizes[i].live += delta;
}

/* realloc with free on size 0, counting live requested bytes. */
static inline void *idle_realloc(void *ptr, size_t size) {
  unsigned char *raw = ptr ? (unsigned char *)ptr - IDLE_HDR : NULL;
  pthread_mutex_lock(&idle_mu);
  if (raw) idle_count(*(size_t *)raw, -1);
  pthread_mutex_unlock(&idle_mu);
  if (size == 0) {
    free(raw);
    return NULL;
  }
  unsigned char *p = realloc(raw, IDLE_HDR + size);
  pthread_mutex_lock(&idle_mu);
  if (p) {
    *(size_t *)p = size;
    idle_count(size, 1);
  } else if (raw) {
    idle_count(*(size_t *)raw, 1); /* realloc failed: the old block lives on */
  }
  pthread_mutex_unlock(&idle_mu);
  return p ? p + IDLE_HDR : NULL;
}

static inline void *idle_malloc(size_t size) { return idle_realloc(NULL, size ? size : 1); }
static inline void idle_free(void *ptr) { idle_realloc(ptr, 0); }

static inline void idle_snapshot(struct idle_heap *out) {
  pthread_mutex_lock(&idle_mu);
  *out = idle_live;
  pthread_mutex_unlock(&idle_mu);
}

/* ---- the process ------------------------------------------------------- */

/* Resident set size in bytes (/proc/self/statm). */
static inline long idle_rss(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  if (f) fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
static inline int idle_connect(uint16_t port) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

struct idle_child {
  pid_t pid;
  int hold; /* closing it lets the child exit (and its connections end) */
};

/* Forks a child that opens n idle connections to port and keeps them
 * until child.hold is closed. */
static inline struct idle_child idle_spawn(uint16_t port, long n) {
  int p[2];
  BENCH_ASSERT(pipe(p) == 0);
  pid_t pid = fork();
  BENCH_ASSERT(pid >= 0);
  if (pid == 0) {
    close(p[1]);
    for (long i = 0; i < n; ++i)
      if (idle_connect(port) < 0) {
        perror("idle client: connect");
        _exit(1);
      }
    char c;
    while (read(p[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(p[0]);
  struct idle_child child = {pid, p[1]};
  return child;
}

/* ---- the measurement ---------------------------------------------------- */

/* What a benchmark plugs in: its loop, one blocking iteration at a time
 * (woken at least every 100 ms), and counters its callbacks keep. */
struct idle_lib {
  const char *name;
  void (*run_once)(void);
  long accepted; /* connections accepted and reading */
  long closed;   /* connections ended and released */
};

/* Runs the loop until *counter reaches target; exits on timeout or when
 * the child died. */
static inline void idle_run_until(struct idle_lib *lib, const long *counter, long target, const struct idle_child *child) {
  double deadline = bench_now() + IDLE_MAX_SECONDS;
  while (*counter < target) {
    lib->run_once();
    int status;
    if (child && waitpid(child->pid, &status, WNOHANG) == child->pid) {
      fprintf(stderr, "client process ended early (%d of %ld connected)\n", (int)*counter, target);
      exit(1);
    }
    if (bench_now() > deadline) {
      fprintf(stderr, "timed out at %ld of %ld\n", *counter, target);
      exit(1);
    }
  }
}

/* Block sizes that grew, largest growth first: the per-connection objects
 * (about n blocks of one size) and the shared arrays (a few big blocks). */
static inline void idle_print_growth(const struct idle_heap *before, const struct idle_heap *after, long n) {
  struct idle_size_count grew[IDLE_SIZES];
  size_t count = 0;
  for (size_t i = 0; i < IDLE_SIZES; ++i) {
    const struct idle_size_count *a = &after->sizes[i];
    if (a->size == 0) continue;
    long was = 0;
    for (size_t j = 0; j < IDLE_SIZES; ++j)
      if (before->sizes[j].size == a->size) was = before->sizes[j].live;
    if (a->live != was) grew[count++] = (struct idle_size_count){a->size, a->live - was};
  }
  for (size_t i = 0; i < count; ++i)
    for (size_t j = i + 1; j < count; ++j)
      if ((long)grew[j].size * grew[j].live > (long)grew[i].size * grew[i].live) {
        struct idle_size_count t = grew[i];
        grew[i] = grew[j];
        grew[j] = t;
      }
  for (size_t i = 0; i < count && i < 12; ++i)
    printf("  %+6ld blocks of %8zu B = %9.1f B per connection\n", grew[i].live, grew[i].size,
           (double)grew[i].size * (double)grew[i].live / (double)n);
}

/*
 * The run: one warm-up connection (one-time loop allocations such as a
 * shared read buffer are not charged to the connections), then n idle
 * connections from the child; prints the growth per connection, then lets
 * them all end. port: the server's, already listening.
 */
static inline void idle_measure(struct idle_lib *lib, uint16_t port, long n) {
  int warm = idle_connect(port);
  BENCH_ASSERT(warm >= 0);
  idle_run_until(lib, &lib->accepted, 1, NULL);
  close(warm);
  idle_run_until(lib, &lib->closed, 1, NULL);

  static struct idle_heap before, after;
  idle_snapshot(&before);
  long rss_before = idle_rss();
  struct idle_child child = idle_spawn(port, n);
  idle_run_until(lib, &lib->accepted, 1 + n, &child);
  /* Registrations made by the last callbacks reach the kernel next iteration. */
  lib->run_once();
  idle_snapshot(&after);
  long rss_after = idle_rss();

  printf("RESULT bench=idle lib=%s conns=%ld heap_per_conn=%.1f blocks_per_conn=%.2f rss_per_conn=%.1f\n", lib->name,
         n, (double)(after.bytes - before.bytes) / (double)n, (double)(after.blocks - before.blocks) / (double)n,
         (double)(rss_after - rss_before) / (double)n);
  idle_print_growth(&before, &after, n);
  fflush(stdout);

  close(child.hold);
  idle_run_until(lib, &lib->closed, 1 + n, NULL);
  int status;
  BENCH_ASSERT(waitpid(child.pid, &status, 0) == child.pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Connections to open: argv[1] or the default. */
static inline long idle_conns(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : IDLE_DEFAULT_CONNS;
  BENCH_ASSERT(n > 0);
  bench_raise_nofile(n + 64); /* the connections plus the loop's own fds */
  return n;
}

#endif
