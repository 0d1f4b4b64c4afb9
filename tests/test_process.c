/*
 * async_process: child processes (async/process.h) with real programs
 * (cat, sh -c, true, false, sleep): pipe streams, exit futures, exec
 * failures returned by the spawn, kill through the pidfd, no SIGCHLD
 * handler, other children of the application left alone, no zombie, no
 * fd leak, no thread; async_process_run() (communicate()).
 *
 * Callbacks never assert (a cmocka failure would longjmp through the
 * library): they record, the test checks afterwards. Every run is bounded
 * by a guard timer (tu_wait_future(), run_bounded()).
 */
#include "test_util.h"

#include <async/process.h>

#include <dirent.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const k_true[] = {"true", NULL};
static const char *const k_false[] = {"false", NULL};
static const char *const k_cat[] = {"cat", NULL};

/* Runs the loop until *flag or ms pass. */
static void run_bounded(async_loop *loop, const int *flag, uint64_t ms) {
  async_timer *guard = tu_guard(loop, ms);
  uint64_t t0 = tu_now_ms();
  while (!*flag && tu_now_ms() - t0 < ms) async_loop_run(loop, ASYNC_RUN_ONCE);
  tu_close(async_timer_handle(guard));
}

/* Waits for the exit future of proc: returns the exit code, or -1000 - signal. */
static int wait_exit(async_loop *loop, async_process *proc) {
  async_future *f = NULL;
  assert_int_equal(async_process_wait(&f, proc), 0);
  assert_int_equal(tu_wait_future(loop, f, 10000), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, f), 0);
  int code = 0;
  int sig = 0;
  assert_int_equal(async_process_result_status(&code, &sig, value), 0);
  const uint8_t *data = (const uint8_t *)"x";
  size_t len = 1;
  assert_int_equal(async_process_result_output(&data, &len, value, 1), 0);
  assert_null(data);
  assert_int_equal(len, 0);
  assert_int_equal(async_future_free(f), 0);
  if (sig) {
    assert_int_equal(code, -1);
    return -1000 - sig;
  }
  return code;
}

/* ---- a protocol collecting what a pipe gives ---------------------------------- */

struct sink {
  char buf[4096];
  size_t len;
  uint64_t total;
  uint64_t hash; /* FNV-1a of every byte */
  int made;
  int eof;
  int lost;
  int error;
  int released;
};

static uint64_t fnv(uint64_t h, const uint8_t *d, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 1099511628211ull;
  return h;
}

static void sink_made(async_stream *s, void *ud) {
  (void)s;
  ((struct sink *)ud)->made++;
}
static size_t sink_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  struct sink *k = ud;
  size_t room = sizeof k->buf - 1 - k->len;
  memcpy(k->buf + k->len, d, n < room ? n : room);
  k->len += n < room ? n : room;
  k->buf[k->len] = '\0';
  k->total += n;
  k->hash = fnv(k->hash, d, n);
  return n;
}
static int sink_eof(async_stream *s, void *ud) {
  (void)s;
  ((struct sink *)ud)->eof++;
  return 0;
}
static void sink_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct sink *k = ud;
  k->lost++;
  k->error = err;
}
static void sink_release(void *ud) { ((struct sink *)ud)->released++; }

static const async_stream_protocol k_sink = {
    sizeof(async_stream_protocol), sink_made, sink_data, sink_eof, sink_lost, NULL, NULL, NULL, sink_release, 0, NULL};

static void sink_init(struct sink *k) {
  memset(k, 0, sizeof *k);
  k->hash = 14695981039346656037ull;
}

/* Standard stream fd of o: mode, served by protocol with userdata. */
static void stdio_to(async_process_options *o, int fd, int mode, const async_stream_protocol *protocol,
                     void *userdata) {
  o->stdio_mode[fd] = mode;
  o->stdio_protocol[fd] = protocol;
  o->stdio_userdata[fd] = userdata;
}

/* Runs argv with options o (stdout a pipe into out), returns its exit. */
static int capture(async_loop *loop, async_process_options *o, const char *const *argv, struct sink *out) {
  sink_init(out);
  o->argv = argv;
  stdio_to(o, 1, ASYNC_STDIO_PIPE, &k_sink, out);
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, o, NULL), 0);
  int code = wait_exit(loop, proc);
  run_bounded(loop, &out->released, 5000);
  assert_int_equal(out->lost, 1);
  assert_int_equal(out->error, 0);
  assert_int_equal(async_process_free(proc), 0);
  return code;
}

/* ---- exit ---------------------------------------------------------------------- */

static void test_exit_codes(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  async_process *proc = NULL;
  o.argv = k_true;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  assert_true(async_process_pid(proc) > 0);
  assert_int_equal(wait_exit(loop, proc), 0);
  /* After the exit: a new wait future is DONE at once, kill is refused. */
  assert_int_equal(wait_exit(loop, proc), 0);
  assert_int_equal(async_process_kill(proc, SIGTERM), ASYNC_ESTATE);
  assert_int_equal(async_process_free(proc), 0);

  o.argv = k_false;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  assert_int_equal(wait_exit(loop, proc), 1);
  assert_int_equal(async_process_free(proc), 0);

  static const char *const exit3[] = {"/bin/sh", "-c", "exit 3", NULL};
  o.argv = exit3;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  assert_int_equal(wait_exit(loop, proc), 3);
  assert_int_equal(async_process_free(proc), 0);
  tu_finish(loop);
}

static void abort_on_signal(int signum) {
  (void)signum;
  abort();
}

static void test_kill_and_signals(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  static const char *const sleep10[] = {"sleep", "10", NULL};
  async_process *proc = NULL;
  o.argv = sleep10;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  assert_int_equal(async_process_kill(proc, 0), 0);
  assert_int_equal(async_process_kill(proc, SIGTERM), 0);
  assert_int_equal(wait_exit(loop, proc), -1000 - SIGTERM);
  assert_int_equal(async_process_free(proc), 0);

  /* The child ends itself with a signal. */
  static const char *const selfkill[] = {"/bin/sh", "-c", "kill -USR1 $$; sleep 5", NULL};
  o.argv = selfkill;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  assert_int_equal(wait_exit(loop, proc), -1000 - SIGUSR1);
  assert_int_equal(async_process_free(proc), 0);

  /* A handler of the parent's is not the child's: reset to default. */
  struct sigaction sa = {0}, old;
  sa.sa_handler = abort_on_signal;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
  static const char *const usr2[] = {"/bin/sh", "-c", "kill -USR2 $$; sleep 5", NULL};
  o.argv = usr2;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  assert_int_equal(wait_exit(loop, proc), -1000 - SIGUSR2);
  assert_int_equal(async_process_free(proc), 0);
  assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
  tu_finish(loop);
}

/* ---- exec failures ----------------------------------------------------------- */

static void test_exec_failures(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  async_process *proc = NULL;
  static const char *const missing[] = {"/nonexistent/program", NULL};
  static const char *const missing_bare[] = {"no-such-program-libasync", NULL};
  static const char *const not_exec[] = {"/etc/passwd", NULL};
  o.argv = missing;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_ENOENT);
  o.argv = missing_bare;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_ENOENT);
  o.argv = not_exec;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EACCES);

  /* Executable, but no format the kernel runs (and no shell fallback). */
  char path[] = "/tmp/libasync-noexec-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "\x01\x02\x03\x04garbage\n", 12), 12);
  assert_int_equal(fchmod(fd, 0755), 0);
  close(fd);
  const char *const garbage[] = {path, NULL};
  o.argv = garbage;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_ENOEXEC);
  unlink(path);

  /* A working directory that does not exist. */
  o.argv = k_true;
  o.cwd = "/nonexistent-dir";
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_ENOENT);
  o.cwd = NULL;

  /* A pipe's userdata is not touched by a failed spawn; no child is left. */
  struct sink k;
  sink_init(&k);
  o.argv = missing;
  stdio_to(&o, 1, ASYNC_STDIO_PIPE, &k_sink, &k);
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_ENOENT);
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(k.made + k.lost + k.released, 0);
  siginfo_t info;
  assert_int_equal(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
  tu_finish(loop);
}

/* ---- options ------------------------------------------------------------------- */

static void test_options(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  struct sink out;

  static const char *const pwd[] = {"/bin/sh", "-c", "pwd", NULL};
  o.cwd = "/";
  assert_int_equal(capture(loop, &o, pwd, &out), 0);
  assert_string_equal(out.buf, "/\n");
  o.cwd = NULL;

  static const char *const env[] = {"/bin/sh", "-c", "echo \"$FOO:$HOME\"", NULL};
  static const char *const envp[] = {"FOO=bar", NULL};
  o.envp = envp;
  assert_int_equal(capture(loop, &o, env, &out), 0);
  assert_string_equal(out.buf, "bar:\n");
  o.envp = NULL;

  /* Every fd but 0, 1 and 2 is closed in the child, close-on-exec or not. */
  int leak = dup2(0, 47); /* not close-on-exec */
  assert_int_equal(leak, 47);
  static const char *const fds[] = {"/bin/sh", "-c", "ls /proc/$$/fd", NULL};
  assert_int_equal(capture(loop, &o, fds, &out), 0);
  assert_string_equal(out.buf, "0\n1\n2\n");
  close(leak);

  /* stderr to /dev/null, then to a caller's fd (a pipe of the test's). */
  static const char *const err[] = {"/bin/sh", "-c", "echo to-stderr >&2", NULL};
  o.stdio_mode[2] = ASYNC_STDIO_NULL;
  assert_int_equal(capture(loop, &o, err, &out), 0);
  assert_string_equal(out.buf, "");
  int p[2];
  assert_int_equal(pipe(p), 0);
  o.stdio_mode[2] = ASYNC_STDIO_FD;
  o.stdio_fd[2] = p[1];
  assert_int_equal(capture(loop, &o, err, &out), 0);
  assert_true(fcntl(p[1], F_GETFD) >= 0); /* still the caller's */
  close(p[1]);
  char got[32] = {0};
  assert_int_equal(read(p[0], got, sizeof got - 1), 10);
  assert_string_equal(got, "to-stderr\n");
  close(p[0]);
  o.stdio_mode[2] = ASYNC_STDIO_INHERIT;

  /* New process group and new session. */
  static const char *const sleep1[] = {"sleep", "1", NULL};
  async_process *proc = NULL;
  o.argv = sleep1;
  o.flags = ASYNC_PROCESS_NEW_GROUP;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  int pid = async_process_pid(proc);
  assert_int_equal(getpgid(pid), pid);
  assert_int_not_equal(getsid(pid), pid);
  assert_int_equal(async_process_kill(proc, SIGKILL), 0);
  assert_int_equal(wait_exit(loop, proc), -1000 - SIGKILL);
  assert_int_equal(async_process_free(proc), 0);
  o.flags = ASYNC_PROCESS_NEW_SESSION;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  pid = async_process_pid(proc);
  assert_int_equal(getsid(pid), pid);
  assert_int_equal(async_process_kill(proc, SIGKILL), 0);
  assert_int_equal(wait_exit(loop, proc), -1000 - SIGKILL);
  assert_int_equal(async_process_free(proc), 0);
  o.flags = 0;

  /* The signal mask: the caller's, or none with RESET_SIGMASK. */
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, &old), 0);
  static const char *const blk[] = {"grep", "SigBlk", "/proc/self/status", NULL};
  assert_int_equal(capture(loop, &o, blk, &out), 0);
  assert_string_equal(out.buf, "SigBlk:\t0000000000000200\n");
  o.flags = ASYNC_PROCESS_RESET_SIGMASK;
  assert_int_equal(capture(loop, &o, blk, &out), 0);
  assert_string_equal(out.buf, "SigBlk:\t0000000000000000\n");
  o.flags = 0;
  assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);

  /* uid and gid: as ourselves (anyone may), the child runs as asked. */
  static const char *const id[] = {"/bin/sh", "-c", "echo $(id -u):$(id -g)", NULL};
  o.flags = ASYNC_PROCESS_SET_UID | ASYNC_PROCESS_SET_GID;
  o.uid = getuid();
  o.gid = getgid();
  assert_int_equal(capture(loop, &o, id, &out), 0);
  char want[64];
  snprintf(want, sizeof want, "%u:%u\n", (unsigned)getuid(), (unsigned)getgid());
  assert_string_equal(out.buf, want);
  if (getuid() != 0) {
    o.uid = 0;
    o.flags = ASYNC_PROCESS_SET_UID;
    o.argv = k_true;
    assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EACCES);
  }
  tu_finish(loop);
}

/* uid and gid set with another thread in the process: the child changes
 * its own ids with raw system calls (glibc's setuid() broadcasts to every
 * thread of the process whose memory the child shares). */
static void *blocked_thread(void *arg) {
  char c;
  ssize_t n = read(*(int *)arg, &c, 1);
  (void)n;
  return NULL;
}

static void test_ids_with_threads(void **state) {
  (void)state;
  int hold[2];
  assert_int_equal(pipe(hold), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, blocked_thread, &hold[0]), 0);
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  struct sink out;
  static const char *const id[] = {"/bin/sh", "-c", "echo $(id -u):$(id -g)", NULL};
  o.flags = ASYNC_PROCESS_SET_UID | ASYNC_PROCESS_SET_GID;
  o.uid = getuid();
  o.gid = getgid();
  assert_int_equal(capture(loop, &o, id, &out), 0);
  char want[64];
  snprintf(want, sizeof want, "%u:%u\n", (unsigned)getuid(), (unsigned)getgid());
  assert_string_equal(out.buf, want);
  tu_finish(loop);
  assert_int_equal(write(hold[1], "x", 1), 1);
  assert_int_equal(pthread_join(t, NULL), 0);
  tu_close_pair(hold);
}

/* ---- pipes --------------------------------------------------------------------- */

#define BIG (64u * 1024u * 1024u)
#define CHUNK (256u * 1024u)

struct source {
  uint8_t chunk[CHUNK];
  uint64_t sent;
  uint64_t hash;
  int lost;
  int error;
  int released;
};

static void source_fill(struct source *src, async_stream *s) {
  /* Writes chunks until the write buffer passes its mark, then waits for write_drained. */
  size_t buffered = 0;
  while (src->sent < BIG && async_stream_write_buffer_size(&buffered, s) == 0 && buffered == 0) {
    for (size_t i = 0; i < CHUNK; i++) src->chunk[i] = (uint8_t)((src->sent + i) * 2654435761u >> 13);
    src->hash = fnv(src->hash, src->chunk, CHUNK);
    if (async_stream_write(s, src->chunk, CHUNK) != 0) return;
    src->sent += CHUNK;
  }
  if (src->sent == BIG) {
    src->sent++;
    async_stream_write_eof(s);
  }
}
static void source_made(async_stream *s, void *ud) { source_fill(ud, s); }
static void source_drained(async_stream *s, void *ud) { source_fill(ud, s); }
static size_t source_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s, (void)d, (void)ud;
  return n;
}
static void source_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct source *src = ud;
  src->lost++;
  src->error = err;
}
static void source_release(void *ud) { ((struct source *)ud)->released++; }

static const async_stream_protocol k_source = {
    sizeof(async_stream_protocol), source_made, source_data, NULL, source_lost, NULL, NULL, source_drained,
    source_release, 0, NULL};

/* 64 MiB through cat, checksummed, over the given transport. */
static void cat_64mib(int transport) {
  async_loop *loop = tu_loop_new();
  static struct source src;
  memset(&src, 0, sizeof src);
  src.hash = 14695981039346656037ull;
  struct sink out;
  sink_init(&out);
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  o.argv = k_cat;
  stdio_to(&o, 0, transport, &k_source, &src);
  stdio_to(&o, 1, transport, &k_sink, &out);
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  async_stream *in = NULL;
  assert_int_equal(async_process_stream(&in, proc, 0), 0);
  if (transport == ASYNC_STDIO_FIFO) assert_int_equal(async_stream_is_reading(in), 0); /* a write end */
  async_stream *err = NULL;
  assert_int_equal(async_process_stream(&err, proc, 2), ASYNC_ESTATE);
  run_bounded(loop, &out.released, 60000);
  /* A socketpair's stream ends once the child closed its end too. */
  run_bounded(loop, &src.released, 5000);
  assert_int_equal(src.lost, 1);
  assert_int_equal(src.error, 0);
  assert_int_equal(out.eof, 1);
  assert_int_equal(out.error, 0);
  assert_int_equal(out.total, BIG);
  assert_true(out.hash == src.hash);
  assert_int_equal(wait_exit(loop, proc), 0);
  /* The stream ended; the process's reference keeps the pointer valid. */
  assert_int_equal(async_stream_write(in, "x", 1), ASYNC_ECLOSED);
  assert_int_equal(async_process_free(proc), 0);
  tu_finish(loop);
}

/* The default stream transport (a socketpair). */
static void test_cat_64mib(void **state) {
  (void)state;
  cat_64mib(ASYNC_STDIO_PIPE);
}

static void test_cat_64mib_fifo(void **state) {
  (void)state;
  cat_64mib(ASYNC_STDIO_FIFO);
}

/* What the child's fd is in each stream mode, and what a program can do
 * with it: ASYNC_STDIO_PIPE and _SOCKETPAIR give a socket, which
 * /dev/stdin and /dev/stdout cannot open (ENXIO); ASYNC_STDIO_FIFO gives a
 * FIFO, which they can, as in a shell's pipeline. */
static void test_dev_stdin(void **state) {
  (void)state;
  static const char *const probe[] = {
      "/bin/sh", "-c",
      "read first; echo \"$first\"; if test -p /dev/stdin && test -p /dev/stdout; then echo fifo; "
      "elif test -S /dev/stdin && test -S /dev/stdout; then echo socket; fi; "
      "{ cat /dev/stdin >/dev/stdout && echo opened; } 2>/dev/null || echo refused",
      NULL};
  static const struct {
    int mode;
    const char *want;
  } cases[] = {
      {ASYNC_STDIO_PIPE, "a\nsocket\nrefused\n"},
      {ASYNC_STDIO_SOCKETPAIR, "a\nsocket\nrefused\n"},
      {ASYNC_STDIO_FIFO, "a\nfifo\nb\nopened\n"},
  };
  async_loop *loop = tu_loop_new();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct sink in_side, out;
    sink_init(&in_side);
    sink_init(&out);
    async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
    o.argv = probe;
    stdio_to(&o, 0, cases[i].mode, &k_sink, &in_side);
    stdio_to(&o, 1, cases[i].mode, &k_sink, &out);
    async_process *proc = NULL;
    assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
    async_stream *in = NULL;
    assert_int_equal(async_process_stream(&in, proc, 0), 0);
    /* The child waits for the first line: it cannot be gone before this. */
    assert_int_equal(async_stream_write(in, "a\nb\n", 4), 0);
    assert_int_equal(async_stream_write_eof(in), 0);
    run_bounded(loop, &out.released, 10000);
    run_bounded(loop, &in_side.released, 5000);
    assert_string_equal(out.buf, cases[i].want);
    assert_int_equal(wait_exit(loop, proc), 0);
    assert_int_equal(async_process_free(proc), 0);
  }
  tu_finish(loop);
}

/* ASYNC_STDIO_SOCKETPAIR: the child's fd is a Unix stream socket, both
 * ways; EOF from async_stream_write_eof(), what the child writes to its
 * stdin comes back on that stream (and its end is a socket); a child gone
 * before reading ends the stream with an error and no SIGPIPE. */
static void test_socketpair(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_DFL);
  async_loop *loop = tu_loop_new();
  struct sink out, in_side;
  sink_init(&out);
  sink_init(&in_side);
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  static const char *const both[] = {"/bin/sh", "-c", "test -S /dev/stdin && test -S /dev/stdout && echo back >&0; cat",
                                     NULL};
  o.argv = both;
  stdio_to(&o, 0, ASYNC_STDIO_SOCKETPAIR, &k_sink, &in_side);
  stdio_to(&o, 1, ASYNC_STDIO_SOCKETPAIR, &k_sink, &out);
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  async_stream *in = NULL;
  assert_int_equal(async_process_stream(&in, proc, 0), 0);
  assert_int_equal(async_stream_write(in, "hello\n", 6), 0);
  assert_int_equal(async_stream_write_eof(in), 0);
  run_bounded(loop, &out.released, 5000);
  assert_string_equal(out.buf, "hello\n");
  assert_int_equal(out.eof, 1);
  assert_int_equal(out.error, 0);
  run_bounded(loop, &in_side.released, 5000);
  assert_string_equal(in_side.buf, "back\n");
  assert_int_equal(in_side.eof, 1);
  assert_int_equal(in_side.error, 0);
  assert_int_equal(wait_exit(loop, proc), 0);
  assert_int_equal(async_process_free(proc), 0);

  /* The child exits without reading: the writer's stream ends in error. */
  static struct source src;
  memset(&src, 0, sizeof src);
  o.argv = k_true;
  stdio_to(&o, 0, ASYNC_STDIO_SOCKETPAIR, &k_source, &src);
  o.stdio_mode[1] = ASYNC_STDIO_INHERIT;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  run_bounded(loop, &src.released, 10000);
  assert_int_equal(src.lost, 1);
  /* ASYNC_ECONNRESET when it left bytes unread in its end, as any socket peer. */
  assert_true(src.error == ASYNC_EPIPE || src.error == ASYNC_ECONNRESET);
  assert_int_equal(wait_exit(loop, proc), 0);
  assert_int_equal(async_process_free(proc), 0);
  tu_finish(loop);
  sigset_t pending;
  sigpending(&pending);
  assert_false(sigismember(&pending, SIGPIPE));
}

static void test_stdin_eof(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct sink out;
  struct sink in_side;
  sink_init(&out);
  sink_init(&in_side);
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  o.argv = k_cat;
  stdio_to(&o, 0, ASYNC_STDIO_PIPE, &k_sink, &in_side);
  stdio_to(&o, 1, ASYNC_STDIO_PIPE, &k_sink, &out);
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  async_stream *in = NULL;
  assert_int_equal(async_process_stream(&in, proc, 0), 0);
  assert_int_equal(async_stream_write(in, "hello\n", 6), 0);
  assert_int_equal(async_stream_write_eof(in), 0);
  run_bounded(loop, &out.released, 5000);
  assert_string_equal(out.buf, "hello\n");
  assert_int_equal(out.eof, 1);
  assert_int_equal(in_side.error, 0);
  assert_int_equal(wait_exit(loop, proc), 0);
  assert_int_equal(async_process_free(proc), 0);
  tu_finish(loop);
}

/* A child that exits, or closes its stdin, before reading its input:
 * ASYNC_EPIPE on the stream (a socketpair's: ASYNC_ECONNRESET when bytes
 * were left unread in the child's end), and no SIGPIPE (SIG_DFL here: it
 * would kill the test). */
static void test_child_gone_epipe(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_DFL);
  static const char *const closes[] = {"/bin/sh", "-c", "exec 0<&-; sleep 0.1", NULL};
  const char *const *programs[] = {k_true, closes};
  const int transports[] = {ASYNC_STDIO_FIFO, ASYNC_STDIO_PIPE};
  for (int i = 0; i < 4; i++) {
    int transport = transports[i / 2];
    async_loop *loop = tu_loop_new();
    static struct source src;
    memset(&src, 0, sizeof src);
    async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
    o.argv = programs[i % 2];
    stdio_to(&o, 0, transport, &k_source, &src);
    async_process *proc = NULL;
    assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
    run_bounded(loop, &src.released, 10000);
    assert_int_equal(src.lost, 1);
    if (transport == ASYNC_STDIO_FIFO)
      assert_int_equal(src.error, ASYNC_EPIPE);
    else
      assert_true(src.error == ASYNC_EPIPE || src.error == ASYNC_ECONNRESET);
    assert_int_equal(wait_exit(loop, proc), 0);
    assert_int_equal(async_process_free(proc), 0);
    tu_finish(loop);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
  }
}

/* The caller blocks SIGPIPE itself: the SIGPIPE a write to a gone child
 * raises through a pipe is still taken off the pending set, and one the
 * caller had pending already is left to it. */
static void test_epipe_sigpipe_blocked(void **state) {
  (void)state;
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  assert_int_equal(pthread_sigmask(SIG_BLOCK, &pipe_set, &old), 0);
  for (int own_pending = 0; own_pending < 2; own_pending++) {
    if (own_pending) assert_int_equal(pthread_kill(pthread_self(), SIGPIPE), 0);
    async_loop *loop = tu_loop_new();
    static struct source src;
    memset(&src, 0, sizeof src);
    async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
    o.argv = k_true;
    stdio_to(&o, 0, ASYNC_STDIO_FIFO, &k_source, &src);
    async_process *proc = NULL;
    assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
    run_bounded(loop, &src.released, 10000);
    assert_int_equal(src.error, ASYNC_EPIPE);
    assert_int_equal(wait_exit(loop, proc), 0);
    assert_int_equal(async_process_free(proc), 0);
    tu_finish(loop);
    sigset_t pending, now;
    sigpending(&pending);
    assert_int_equal(sigismember(&pending, SIGPIPE), own_pending);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
    assert_true(sigismember(&now, SIGPIPE)); /* the caller's mask, as it was */
    if (own_pending) {
      struct timespec zero = {0, 0};
      assert_int_equal(sigtimedwait(&pipe_set, NULL, &zero), SIGPIPE);
    }
  }
  assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

/* Each ASYNC_STDIO_FIFO pipe holds 256 KiB where /proc/sys/fs/pipe-max-size allows
 * it (64 KiB pipes wake the loop and the child four times as often). */
static void test_pipe_capacity(void **state) {
  (void)state;
  long max = 0;
  FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
  assert_non_null(f);
  assert_int_equal(fscanf(f, "%ld", &max), 1);
  fclose(f);
  int probe[2];
  assert_int_equal(pipe(probe), 0);
  int base = fcntl(probe[0], F_GETPIPE_SZ);
  tu_close_pair(probe);
  int want = max >= 256 * 1024 || geteuid() == 0 ? 256 * 1024 : base;
  async_loop *loop = tu_loop_new();
  struct sink k[3];
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  static const char *const sleep10[] = {"sleep", "10", NULL};
  o.argv = sleep10;
  for (int i = 0; i < 3; i++) {
    sink_init(&k[i]);
    stdio_to(&o, i, ASYNC_STDIO_FIFO, &k_sink, &k[i]);
  }
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  for (int i = 0; i < 3; i++) {
    async_stream *s = NULL;
    assert_int_equal(async_process_stream(&s, proc, i), 0);
    assert_int_equal(fcntl(async_stream_fd(s), F_GETPIPE_SZ), want);
  }
  assert_int_equal(async_process_kill(proc, SIGKILL), 0);
  assert_int_equal(wait_exit(loop, proc), -1000 - SIGKILL);
  assert_int_equal(async_process_free(proc), 0);
  tu_finish(loop);
}

/* ---- process-wide effects --------------------------------------------------------- */

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static int count_threads(void) {
  FILE *f = fopen("/proc/self/status", "r");
  assert_non_null(f);
  char line[256];
  int n = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %d", &n) == 1) break;
  fclose(f);
  return n;
}

static void test_sigchld_untouched(void **state) {
  (void)state;
  struct sigaction before, after;
  sigset_t mask_before, mask_after;
  assert_int_equal(sigaction(SIGCHLD, NULL, &before), 0);
  assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &mask_before), 0);
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  async_process *proc = NULL;
  o.argv = k_true;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  assert_int_equal(sigaction(SIGCHLD, NULL, &after), 0);
  assert_true(after.sa_handler == before.sa_handler);
  assert_int_equal(wait_exit(loop, proc), 0);
  assert_int_equal(async_process_free(proc), 0);
  tu_finish(loop);
  assert_int_equal(sigaction(SIGCHLD, NULL, &after), 0);
  assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &mask_after), 0);
  assert_true(after.sa_handler == before.sa_handler);
  assert_int_equal(after.sa_flags, before.sa_flags);
  for (int sig = 1; sig < 65; sig++) assert_int_equal(sigismember(&mask_before, sig), sigismember(&mask_after, sig));
}

/* Another child of the application, made with fork(), is never reaped by the library. */
static void test_other_child_not_reaped(void **state) {
  (void)state;
  pid_t other = fork();
  assert_true(other >= 0);
  if (other == 0) _exit(7);
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  for (int i = 0; i < 5; i++) {
    async_process *proc = NULL;
    o.argv = k_true;
    assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
    assert_int_equal(wait_exit(loop, proc), 0);
    assert_int_equal(async_process_free(proc), 0);
  }
  tu_finish(loop);
  int status = 0;
  assert_int_equal(waitpid(other, &status, 0), other);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 7);
}

static void test_thousand_spawns(void **state) {
  (void)state;
  int fds = count_fds();
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  o.argv = k_true;
  o.stdio_mode[0] = ASYNC_STDIO_NULL;
  for (int i = 0; i < 1000; i++) {
    async_process *proc = NULL;
    assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
    assert_int_equal(wait_exit(loop, proc), 0);
    assert_int_equal(async_process_free(proc), 0);
  }
  tu_finish(loop);
  assert_int_equal(count_fds(), fds);
  assert_int_equal(count_threads(), 1);
  /* No child left at all: nothing to reap, no zombie. */
  siginfo_t info;
  assert_int_equal(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
}

/* Freed while the child runs: not killed, reaped by the loop, no zombie. */
static void test_free_while_running(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  static const char *const marker[] = {"/bin/sh", "-c", "sleep 0.2; echo done", NULL};
  struct sink out;
  sink_init(&out);
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  o.argv = marker;
  stdio_to(&o, 1, ASYNC_STDIO_PIPE, &k_sink, &out);
  int token = 0;
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, &token), 0);
  assert_ptr_equal(async_process_userdata(proc), &token);
  async_future *exit_future = NULL;
  assert_int_equal(async_process_wait(&exit_future, proc), 0);
  assert_int_equal(async_process_free(proc), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0); /* until the child is reaped */
  assert_string_equal(out.buf, "done\n");
  assert_int_equal(async_future_get_state(exit_future), ASYNC_FUTURE_DONE);
  assert_int_equal(async_future_free(exit_future), 0);
  tu_finish(loop);
  siginfo_t info;
  assert_int_equal(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
}

/* The application reaps the child itself (waitpid on its pid): the status
 * is the application's, the wait futures fail with ASYNC_ESTATE, and the
 * loop still lets go of the child. */
static void test_reaped_by_application(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  static const char *const exit5[] = {"/bin/sh", "-c", "exit 5", NULL};
  o.argv = exit5;
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  async_future *f = NULL;
  assert_int_equal(async_process_wait(&f, proc), 0);
  int status = 0;
  assert_int_equal(waitpid(async_process_pid(proc), &status, 0), async_process_pid(proc));
  assert_int_equal(WEXITSTATUS(status), 5);
  assert_int_equal(tu_wait_future(loop, f, 10000), ASYNC_ESTATE);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_process_kill(proc, SIGTERM), ASYNC_ESTATE);
  assert_int_equal(async_process_free(proc), 0);
  tu_finish(loop);
}

/* SIGCHLD set to SIG_IGN by the application: the kernel reaps the child
 * itself, so the wait futures fail with ASYNC_ESTATE, and the loop lets go.
 * The spawn itself must succeed even when the child has exited (and been
 * reaped) before the spawn call returns: many spawns of a program that
 * exits at once make that happen. */
static void test_sigchld_ignored(void **state) {
  (void)state;
  struct sigaction ign = {0}, old;
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  o.argv = k_true;
  int spawned = 0, waited = 0;
  for (int i = 0; i < 300; i++) {
    async_process *proc = NULL;
    if (async_process_spawn(&proc, loop, &o, NULL) != 0) continue;
    spawned++;
    async_future *f = NULL;
    if (async_process_wait(&f, proc) == 0 && tu_wait_future(loop, f, 10000) == ASYNC_ESTATE) waited++;
    async_future_free(f);
    async_process_free(proc);
  }
  tu_finish(loop);
  struct sigaction now;
  assert_int_equal(sigaction(SIGCHLD, &old, &now), 0); /* restored before any assertion */
  assert_true(now.sa_handler == SIG_IGN);              /* still the application's */
  assert_int_equal(spawned, 300);
  assert_int_equal(waited, 300);
}

static void count_release(void *ud) { (*(int *)ud)++; }

static void test_release_userdata(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  int released = 0;
  o.argv = k_true;
  o.release = count_release;
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, &released), 0);
  assert_int_equal(released, 0);
  assert_int_equal(async_process_free(proc), 0);
  assert_int_equal(released, 1);
  tu_finish(loop);
  assert_int_equal(released, 1);
}

/* ---- async_process_run ----------------------------------------------------------- */

static void test_run(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  static const char *const both[] = {"/bin/sh", "-c", "cat; echo err >&2; exit 4", NULL};
  async_future *f = NULL;
  assert_int_equal(async_process_run(&f, loop, both, (const uint8_t *)"input", 5, 0), 0);
  assert_int_equal(tu_wait_future(loop, f, 10000), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, f), 0);
  int code = 0, sig = 0;
  assert_int_equal(async_process_result_status(&code, &sig, value), 0);
  assert_int_equal(code, 4);
  assert_int_equal(sig, 0);
  const uint8_t *data = NULL;
  size_t len = 0;
  assert_int_equal(async_process_result_output(&data, &len, value, 1), 0);
  assert_int_equal(len, 5);
  assert_memory_equal(data, "input", 5);
  assert_int_equal(async_process_result_output(&data, &len, value, 2), 0);
  assert_int_equal(len, 4);
  assert_memory_equal(data, "err\n", 4);
  assert_int_equal(async_future_free(f), 0);

  /* Its pipes are FIFOs: a program that opens /dev/stdin gets the input. */
  static const char *const dev_stdin[] = {"/bin/sh", "-c", "cat /dev/stdin", NULL};
  assert_int_equal(async_process_run(&f, loop, dev_stdin, (const uint8_t *)"input", 5, 0), 0);
  assert_int_equal(tu_wait_future(loop, f, 10000), 0);
  assert_int_equal(async_future_result(&value, f), 0);
  assert_int_equal(async_process_result_output(&data, &len, value, 1), 0);
  assert_int_equal(len, 5);
  assert_memory_equal(data, "input", 5);
  assert_int_equal(async_future_free(f), 0);

  /* No input: stdin is /dev/null. A child not reading its input is fine. */
  assert_int_equal(async_process_run(&f, loop, k_cat, NULL, 0, 0), 0);
  assert_int_equal(tu_wait_future(loop, f, 10000), 0);
  assert_int_equal(async_future_free(f), 0);
  static uint8_t lots[1 << 20];
  assert_int_equal(async_process_run(&f, loop, k_true, lots, sizeof lots, 0), 0);
  assert_int_equal(tu_wait_future(loop, f, 10000), 0);
  assert_int_equal(async_future_free(f), 0);

  /* Over the limit: ASYNC_ENOBUFS, the endless child is killed. */
  static const char *const endless[] = {"cat", "/dev/zero", NULL};
  assert_int_equal(async_process_run(&f, loop, endless, NULL, 0, 100000), 0);
  assert_int_equal(tu_wait_future(loop, f, 10000), ASYNC_ENOBUFS);
  assert_int_equal(async_future_free(f), 0);
  siginfo_t gone;
  assert_int_equal(waitid(P_ALL, 0, &gone, WEXITED | WNOHANG), -1); /* killed and reaped already */
  assert_int_equal(errno, ECHILD);

  /* Cancelled: the child is killed and reaped all the same. */
  static const char *const sleep10[] = {"sleep", "10", NULL};
  assert_int_equal(async_process_run(&f, loop, sleep10, NULL, 0, 0), 0);
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_future_free(f), 0);
  uint64_t t0 = tu_now_ms();
  tu_finish(loop);
  assert_true(tu_now_ms() - t0 < 5000);

  /* Exec failures come from the call. */
  loop = tu_loop_new();
  static const char *const missing[] = {"/nonexistent/program", NULL};
  f = NULL;
  assert_int_equal(async_process_run(&f, loop, missing, NULL, 0, 0), ASYNC_ENOENT);
  assert_null(f);
  tu_finish(loop);
  siginfo_t info;
  assert_int_equal(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
}

/* ---- bad input ----------------------------------------------------------------------- */

static void test_bad_input(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_process *proc = NULL;
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  static const char *const empty[] = {"", NULL};
  static const char *const none[] = {NULL};
  o.argv = k_true;
  assert_int_equal(async_process_spawn(NULL, loop, &o, NULL), ASYNC_EINVAL);
  assert_int_equal(async_process_spawn(&proc, NULL, &o, NULL), ASYNC_EINVAL);
  assert_int_equal(async_process_spawn(&proc, (async_loop *)&o, &o, NULL), ASYNC_EINVAL);
  assert_int_equal(async_process_spawn(&proc, loop, NULL, NULL), ASYNC_EINVAL);
  o.argv = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.argv = empty;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.argv = none;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.argv = k_true;
  o.size = 4;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.size = sizeof o;
  o.flags = 1u << 20;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.flags = ASYNC_PROCESS_NEW_GROUP | ASYNC_PROCESS_NEW_SESSION;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.flags = 0;
  o.stdio_mode[1] = 7;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.stdio_mode[1] = ASYNC_STDIO_PIPE; /* no protocol */
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.stdio_mode[1] = ASYNC_STDIO_SOCKETPAIR; /* no protocol */
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.stdio_mode[1] = ASYNC_STDIO_FIFO; /* no protocol */
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.stdio_mode[1] = ASYNC_STDIO_FIFO + 1;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  o.stdio_mode[1] = ASYNC_STDIO_FD;
  o.stdio_fd[1] = -1;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EINVAL);
  int fd = dup(0);
  close(fd);
  o.stdio_fd[1] = fd;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_EBADF);
  o.stdio_mode[1] = ASYNC_STDIO_INHERIT;
  assert_null(proc);
  siginfo_t info;
  assert_int_equal(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1);

  /* Calls on things that are not processes. */
  async_future *f = NULL;
  async_stream *s = NULL;
  assert_int_equal(async_process_wait(&f, NULL), ASYNC_EINVAL);
  assert_int_equal(async_process_wait(&f, (async_process *)loop), ASYNC_EINVAL);
  assert_int_equal(async_process_kill(NULL, SIGTERM), ASYNC_EINVAL);
  assert_int_equal(async_process_pid((async_process *)loop), ASYNC_EINVAL);
  assert_int_equal(async_process_stream(&s, NULL, 0), ASYNC_EINVAL);
  assert_null(async_process_userdata(NULL));
  assert_int_equal(async_process_free(NULL), ASYNC_EINVAL);
  assert_int_equal(async_process_free((async_process *)loop), ASYNC_EINVAL);
  int code = 0;
  const uint8_t *data = NULL;
  size_t len = 0;
  assert_int_equal(async_process_result_status(&code, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_process_result_status(&code, NULL, (async_process_result *)loop), ASYNC_EINVAL);
  assert_int_equal(async_process_result_output(&data, &len, NULL, 1), ASYNC_EINVAL);
  assert_int_equal(async_process_run(NULL, loop, k_true, NULL, 0, 0), ASYNC_EINVAL);
  assert_int_equal(async_process_run(&f, NULL, k_true, NULL, 0, 0), ASYNC_EINVAL);
  assert_int_equal(async_process_run(&f, loop, NULL, NULL, 0, 0), ASYNC_EINVAL);
  assert_int_equal(async_process_run(&f, loop, empty, NULL, 0, 0), ASYNC_EINVAL);
  assert_int_equal(async_process_run(&f, loop, k_true, NULL, 3, 0), ASYNC_EINVAL);
  tu_finish(loop);
}

/* A live process: out-of-range arguments. */
static void test_bad_input_live(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_process *proc = NULL;
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  async_future *f = NULL;
  async_stream *s = NULL;
  const uint8_t *data = NULL;
  size_t len = 0;
  static const char *const sleep10[] = {"sleep", "10", NULL};
  o.argv = sleep10;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), 0);
  assert_int_equal(async_process_kill(proc, -1), ASYNC_EINVAL);
  assert_int_equal(async_process_kill(proc, 65), ASYNC_EINVAL);
  assert_int_equal(async_process_wait(NULL, proc), ASYNC_EINVAL);
  assert_int_equal(async_process_stream(NULL, proc, 0), ASYNC_EINVAL);
  assert_int_equal(async_process_stream(&s, proc, 3), ASYNC_EINVAL);
  assert_int_equal(async_process_stream(&s, proc, -1), ASYNC_EINVAL);
  assert_int_equal(async_process_stream(&s, proc, 0), ASYNC_ESTATE);
  assert_int_equal(async_process_wait(&f, proc), 0);
  void *value = NULL;
  assert_int_equal(async_process_kill(proc, SIGKILL), 0);
  assert_int_equal(tu_wait_future(loop, f, 10000), 0);
  assert_int_equal(async_future_result(&value, f), 0);
  assert_int_equal(async_process_result_output(&data, &len, value, 0), ASYNC_EINVAL);
  assert_int_equal(async_process_result_output(&data, &len, value, 3), ASYNC_EINVAL);
  assert_int_equal(async_process_result_output(NULL, &len, value, 1), ASYNC_EINVAL);
  assert_int_equal(async_process_result_output(&data, NULL, value, 1), ASYNC_EINVAL);
  assert_int_equal(async_process_result_status(NULL, NULL, value), 0);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_process_free(proc), 0);
  tu_finish(loop);
}

/* ---- a system without pidfds -------------------------------------------------------- */

/* valgrind 3.19 (Debian 12's) does not know pidfd_open (syscall 434): under
 * it the library must see no pidfd support, and refuse cleanly. */
static int under_valgrind(void) {
  const char *preload = getenv("LD_PRELOAD");
  return preload && strstr(preload, "vgpreload") != NULL;
}

static void test_no_pidfd(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fds = count_fds();
  async_process_options o = ASYNC_PROCESS_OPTIONS_INIT;
  struct sink out;
  sink_init(&out);
  o.argv = k_cat;
  stdio_to(&o, 1, ASYNC_STDIO_PIPE, &k_sink, &out);
  async_process *proc = NULL;
  assert_int_equal(async_process_spawn(&proc, loop, &o, NULL), ASYNC_ENOTSUP);
  assert_null(proc);
  async_future *f = NULL;
  assert_int_equal(async_process_run(&f, loop, k_true, NULL, 0, 0), ASYNC_ENOTSUP);
  assert_null(f);
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(out.made + out.lost + out.released, 0);
  assert_int_equal(count_fds(), fds);
  siginfo_t info;
  assert_int_equal(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
  tu_finish(loop);
}

/* A kernel without pidfd_open, made with a seccomp filter (the syscall
 * fails with ENOSYS) in a forked child of the test: the same contract as
 * under valgrind, in every build. */
static void test_no_pidfd_kernel(void **state) {
  (void)state;
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        /* clone with CLONE_PIDFD refused, as by a kernel before 5.2 that
         * knows no such flag (the low word of the flags argument). */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_PIDFD, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) _exit(2);
    /* cmocka's assertions in a forked child report through the exit code. */
    const struct CMUnitTest inner[] = {cmocka_unit_test(test_no_pidfd)};
    _exit(cmocka_run_group_tests(inner, NULL, NULL) == 0 ? 0 : 3);
  }
  int status = 0;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  if (under_valgrind()) {
    printf("under valgrind, which does not know pidfd_open: checking the ASYNC_ENOTSUP contract\n");
    const struct CMUnitTest no_pidfd[] = {
        cmocka_unit_test(test_no_pidfd),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(no_pidfd, NULL, NULL);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exit_codes),
      cmocka_unit_test(test_kill_and_signals),
      cmocka_unit_test(test_exec_failures),
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_ids_with_threads),
      cmocka_unit_test(test_cat_64mib),
      cmocka_unit_test(test_cat_64mib_fifo),
      cmocka_unit_test(test_dev_stdin),
      cmocka_unit_test(test_socketpair),
      cmocka_unit_test(test_stdin_eof),
      cmocka_unit_test(test_child_gone_epipe),
      cmocka_unit_test(test_epipe_sigpipe_blocked),
      cmocka_unit_test(test_pipe_capacity),
      cmocka_unit_test(test_sigchld_untouched),
      cmocka_unit_test(test_other_child_not_reaped),
      cmocka_unit_test(test_thousand_spawns),
      cmocka_unit_test(test_free_while_running),
      cmocka_unit_test(test_release_userdata),
      cmocka_unit_test(test_reaped_by_application),
      cmocka_unit_test(test_sigchld_ignored),
      cmocka_unit_test(test_run),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_bad_input_live),
      cmocka_unit_test(test_no_pidfd_kernel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
