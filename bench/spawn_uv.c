/*
 * Subprocess benchmark on libuv (uv_spawn), the twin of spawn_async.c:
 * `true` spawns N children of /bin/true one after the other, each waited
 * for; `cat` sends 64 MiB through one cat child through the loop.
 */
#define _POSIX_C_SOURCE 200809L

#include <string.h>
#include <uv.h>

#include "bench_common.h"

#define CHUNK (256 * 1024)
#define TOTAL (64ull * 1024 * 1024)

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, uv_strerror(rc));
    exit(1);
  }
}

static char chunk[CHUNK];
static uint64_t sent, received;
static int exited;
static uv_pipe_t in_pipe, out_pipe;
static uv_write_t write_req;
static uv_shutdown_t shutdown_req;
static char read_buf[64 * 1024];

static void on_exit_cb(uv_process_t *p, int64_t status, int signal) {
  if (status != 0 || signal != 0) check(UV_EIO, "exit code");
  exited = 1;
  uv_close((uv_handle_t *)p, NULL);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  check(status, "shutdown");
  uv_close((uv_handle_t *)req->handle, NULL);
}

static void write_next(void);
static void on_write(uv_write_t *req, int status) {
  (void)req;
  check(status, "write");
  write_next();
}
static void write_next(void) {
  if (sent == TOTAL) {
    check(uv_shutdown(&shutdown_req, (uv_stream_t *)&in_pipe, on_shutdown), "shutdown");
    return;
  }
  sent += CHUNK;
  uv_buf_t b = uv_buf_init(chunk, CHUNK);
  check(uv_write(&write_req, (uv_stream_t *)&in_pipe, &b, 1, on_write), "write");
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h, (void)size;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n == UV_EOF) {
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  check((int)n, "read");
  received += (uint64_t)n;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "true";
  uv_loop_t *loop = uv_default_loop();
  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.exit_cb = on_exit_cb;
  if (strcmp(mode, "true") == 0) {
    char *args[] = {"/bin/true", NULL};
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    o.file = args[0];
    o.args = args;
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
      uv_process_t proc;
      exited = 0;
      check(uv_spawn(loop, &proc, &o), "spawn");
      uv_run(loop, UV_RUN_DEFAULT);
      if (!exited) check(UV_EIO, "no exit");
    }
    double dt = bench_now() - t0;
    printf("RESULT bench=spawn_true lib=uv rate=%.0f\n", n / dt);
  } else {
    char *args[] = {"/bin/cat", NULL};
    uv_stdio_container_t stdio[3];
    memset(chunk, 'x', sizeof chunk);
    uv_pipe_init(loop, &in_pipe, 0);
    uv_pipe_init(loop, &out_pipe, 0);
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&in_pipe;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&out_pipe;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    o.file = args[0];
    o.args = args;
    o.stdio = stdio;
    o.stdio_count = 3;
    double cpu0 = bench_cpu_with_children();
    double t0 = bench_now();
    uv_process_t proc;
    check(uv_spawn(loop, &proc, &o), "spawn");
    check(uv_read_start((uv_stream_t *)&out_pipe, on_alloc, on_read), "read_start");
    write_next();
    uv_run(loop, UV_RUN_DEFAULT);
    double dt = bench_now() - t0;
    double cpu = bench_cpu_with_children() - cpu0;
    if (received != TOTAL || !exited) check(UV_EIO, "bytes received");
    printf("RESULT bench=spawn_cat lib=uv mibps=%.0f cpu_us_per_mib=%.0f\n", TOTAL / (1024.0 * 1024.0) / dt,
           cpu * 1e6 / (TOTAL / (1024.0 * 1024.0)));
  }
  uv_loop_close(loop);
  return 0;
}
