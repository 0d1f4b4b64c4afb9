/*
 * Subprocess benchmark on libasync: `true` spawns N children of /bin/true
 * one after the other, each waited for (spawns per second); `cat` sends
 * 64 MiB through one cat child, writing its stdin and reading its stdout
 * through the loop (MiB per second), over ASYNC_STDIO_PIPE streams (Unix
 * socketpairs, the transport libuv's stdio pipes are too); `catfifo` the
 * same over pipe(2)s (ASYNC_STDIO_FIFO). See bench/run_spawn.sh; the libuv
 * twin is spawn_uv.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <async.h>
#include <string.h>

#include "bench_common.h"

#define CHUNK (256 * 1024)
#define TOTAL (64ull * 1024 * 1024)

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, async_err_name(rc));
    exit(1);
  }
}

static uint8_t chunk[CHUNK];
static uint64_t sent, received;

static void write_next(async_stream *s);
static void chunk_done(void *ud) { write_next(ud); }
static void write_next(async_stream *s) {
  if (sent == TOTAL) {
    check(async_stream_write_eof(s), "write_eof");
    return;
  }
  sent += CHUNK;
  check(async_stream_write_zc(s, chunk, CHUNK, chunk_done, s), "write");
}
static void input_made(async_stream *s, void *ud) {
  (void)ud;
  write_next(s);
}
static size_t ignore(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s, (void)d, (void)ud;
  return n;
}
static size_t count(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s, (void)d, (void)ud;
  received += n;
  return n;
}
static void lost(async_stream *s, int err, void *ud) {
  (void)s, (void)ud;
  check(err, "stream");
}

static void wait_exit(async_loop *loop, async_process *proc) {
  async_future *f = NULL;
  check(async_process_wait(&f, proc), "wait");
  check(async_loop_run_until(loop, f), "run_until");
  void *result = NULL;
  int code = -1;
  check(async_future_result(&result, f), "result");
  check(async_process_result_status(&code, NULL, result), "status");
  if (code != 0) check(ASYNC_EIO, "exit code");
  check(async_future_free(f), "future free");
  check(async_process_free(proc), "free");
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "true";
  async_loop *loop = NULL;
  check(async_loop_new(&loop), "loop");
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  if (strcmp(mode, "true") == 0) {
    static const char *const argv_true[] = {"/bin/true", NULL};
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    o.argv = argv_true;
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
      async_process *proc = NULL;
      check(async_process_spawn(&proc, loop, &o, NULL), "spawn");
      wait_exit(loop, proc);
    }
    double dt = bench_now() - t0;
    printf("RESULT bench=spawn_true lib=async rate=%.0f\n", n / dt);
  } else {
    static const char *const argv_cat[] = {"/bin/cat", NULL};
    static const async_stream_protocol in = {sizeof(async_stream_protocol), input_made, ignore, NULL, lost, NULL,
                                             NULL, NULL, NULL, 0, NULL};
    static const async_stream_protocol out = {sizeof(async_stream_protocol), NULL, count, NULL, lost, NULL, NULL,
                                              NULL, NULL, 0, NULL};
    memset(chunk, 'x', sizeof chunk);
    int transport = strcmp(mode, "catfifo") == 0 ? ASYNC_STDIO_FIFO : ASYNC_STDIO_PIPE;
    o.argv = argv_cat;
    o.stdio_mode[0] = transport;
    o.stdio_protocol[0] = &in;
    o.stdio_mode[1] = transport;
    o.stdio_protocol[1] = &out;
    double cpu0 = bench_cpu_with_children();
    double t0 = bench_now();
    async_process *proc = NULL;
    check(async_process_spawn(&proc, loop, &o, NULL), "spawn");
    wait_exit(loop, proc);
    check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "run");
    double dt = bench_now() - t0;
    double cpu = bench_cpu_with_children() - cpu0;
    if (received != TOTAL) check(ASYNC_EIO, "bytes received");
    printf("RESULT bench=spawn_%s lib=async mibps=%.0f cpu_us_per_mib=%.0f\n", mode, TOTAL / (1024.0 * 1024.0) / dt,
           cpu * 1e6 / (TOTAL / (1024.0 * 1024.0)));
  }
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "run");
  check(async_loop_free(loop), "loop free");
  return 0;
}
