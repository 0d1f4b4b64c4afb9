/*
 * subprocess.c: a pipeline of two programs, `seq 1 100000 | wc -c`, with
 * the data flowing through the loop instead of a pipe between them.
 *
 * 1. `wc -c` is spawned with its stdin and stdout as streams (ASYNC_STDIO_PIPE:
 *    Unix socketpairs, as libuv gives).
 * 2. `seq 1 100000` is spawned with its stdout as a stream; every
 *    chunk it writes is passed on to wc's stdin (the bytes are counted on
 *    the way). When wc's stdin is full (pause_writing), seq's stream stops
 *    reading until it drains (resume_writing): flow control end to end.
 * 3. seq's end of file closes wc's stdin; wc prints its count, which must
 *    equal the bytes that went through the loop.
 * 4. Both exits are awaited with async_process_wait(); no SIGCHLD handler
 *    is installed and nothing else of the program is reaped.
 *
 * Build: cc subprocess.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

struct pipeline {
  async_stream *source; /* seq's stdout */
  async_stream *sink;   /* wc's stdin */
  unsigned long long passed;
  char count[64]; /* what wc printed */
  size_t count_len;
};

/* ---- seq's stdout: pass everything on to wc's stdin -------------------- */

static void source_made(async_stream *s, void *ud) { ((struct pipeline *)ud)->source = s; }

static size_t source_data(async_stream *s, const uint8_t *data, size_t len, void *ud) {
  (void)s;
  struct pipeline *p = ud;
  check(async_stream_write(p->sink, data, len), "write to wc");
  p->passed += len;
  return len;
}

static int source_eof(async_stream *s, void *ud) {
  (void)s;
  check(async_stream_write_eof(((struct pipeline *)ud)->sink), "close wc's stdin");
  return 0;
}

static void source_lost(async_stream *s, int error, void *ud) {
  (void)s, (void)ud;
  check(error, "seq's output");
}

/* ---- wc's stdin: flow control back to seq's stdout ------------------------- */

static size_t ignore(async_stream *s, const uint8_t *data, size_t len, void *ud) {
  (void)s, (void)data, (void)ud;
  return len;
}

static void sink_lost(async_stream *s, int error, void *ud) {
  (void)s, (void)ud;
  check(error, "wc's input");
}

static void sink_pause(async_stream *s, void *ud) {
  (void)s;
  async_stream_pause_reading(((struct pipeline *)ud)->source);
}

static void sink_resume(async_stream *s, void *ud) {
  (void)s;
  async_stream_resume_reading(((struct pipeline *)ud)->source);
}

/* ---- wc's stdout: its count --------------------------------------------------- */

static size_t count_data(async_stream *s, const uint8_t *data, size_t len, void *ud) {
  (void)s;
  struct pipeline *p = ud;
  size_t room = sizeof p->count - 1 - p->count_len;
  size_t n = len < room ? len : room;
  memcpy(p->count + p->count_len, data, n);
  p->count_len += n;
  return len;
}

static void count_lost(async_stream *s, int error, void *ud) {
  (void)s, (void)ud;
  check(error, "wc's output");
}

/* Spawns argv and waits for nothing: returns the process. */
static async_process *spawn(async_loop *loop, const char *const *argv, const async_process_options *base) {
  async_process_options o = *base;
  o.argv = argv;
  async_process *proc = NULL;
  check(async_process_spawn(&proc, loop, &o, NULL), argv[0]);
  return proc;
}

static int exit_code(async_loop *loop, async_process *proc) {
  async_future *f = NULL;
  check(async_process_wait(&f, proc), "wait");
  check(async_loop_run_until(loop, f), "run until the exit");
  void *result = NULL;
  check(async_future_result(&result, f), "result");
  int code = 0, signal = 0;
  check(async_process_result_status(&code, &signal, result), "status");
  check(async_future_free(f), "future free");
  return signal ? 128 + signal : code;
}

int main(void) {
  async_loop *loop = NULL;
  check(async_loop_new(&loop), "loop");
  struct pipeline p = {0};

  static const async_stream_protocol source = {sizeof(async_stream_protocol),
                                               source_made,
                                               source_data,
                                               source_eof,
                                               source_lost,
                                               NULL,
                                               NULL,
                                               NULL,
                                               NULL,
                                               0,
                                               NULL};
  static const async_stream_protocol sink = {
      sizeof(async_stream_protocol), NULL, ignore, NULL, sink_lost, sink_pause, sink_resume, NULL, NULL, 0, NULL};
  static const async_stream_protocol count = {
      sizeof(async_stream_protocol), NULL, count_data, NULL, count_lost, NULL, NULL, NULL, NULL, 0, NULL};

  static const char *const wc[] = {"wc", "-c", NULL};
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  o.stdio_mode[0] = ASYNC_STDIO_PIPE;
  o.stdio_protocol[0] = &sink;
  o.stdio_userdata[0] = &p;
  o.stdio_mode[1] = ASYNC_STDIO_PIPE;
  o.stdio_protocol[1] = &count;
  o.stdio_userdata[1] = &p;
  async_process *consumer = spawn(loop, wc, &o);
  check(async_process_stream(&p.sink, consumer, 0), "wc's stdin");

  static const char *const seq[] = {"seq", "1", "100000", NULL};
  async_process_options so = ASYNC_PROCESS_OPTIONS_INIT;
  so.stdio_mode[1] = ASYNC_STDIO_PIPE;
  so.stdio_protocol[1] = &source;
  so.stdio_userdata[1] = &p;
  async_process *producer = spawn(loop, seq, &so);

  int seq_exit = exit_code(loop, producer);
  int wc_exit = exit_code(loop, consumer);
  check(async_process_free(producer), "free seq");
  check(async_process_free(consumer), "free wc");
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "run to the end"); /* the streams' last callbacks */
  check(async_loop_free(loop), "loop free");

  unsigned long long counted = strtoull(p.count, NULL, 10);
  printf("seq exited %d, wc exited %d: %llu bytes through the loop, wc counted %llu\n", seq_exit, wc_exit, p.passed,
         counted);
  return seq_exit == 0 && wc_exit == 0 && p.passed > 0 && counted == p.passed ? 0 : 1;
}
