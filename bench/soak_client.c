/*
 * Soak benchmark client (bench/soak.sh): keeps CONNECTIONS libasync client
 * connections to soak_server churning for DURATION seconds, and samples the
 * RSS, fd count and CPU of both processes every 10 s.
 *
 * Each connection: async_tcp_connect (Happy Eyeballs on; the host rotates
 * over "localhost", which races ::1 against 127.0.0.1, "127.0.0.1" and
 * "::1") with a fresh async_reader as its protocol; a "hello" line sent and
 * its echo read back with async_reader_read_line; then the connection stays
 * open until it is the oldest one and is retired, ending in one of four
 * ways in turn (the line protocol is bench/soak.h):
 *   bye    "bye" sent, its echo read, then the server's end of file: the
 *          server closes first;
 *   close  one more line echoed, then the client closes (a FIN first);
 *   abort  the client aborts with SO_LINGER 0 (an RST);
 *   quiet  "quiet" sent, the server's idle timeout ends the connection.
 * Every connection's reader and connect future are then freed and its slot
 * connects again at once. Pacing: RATE tokens per second; each token
 * connects a free slot (the ramp up to CONNECTIONS, or a slot whose
 * connection failed) or else retires the oldest open connection, so RATE
 * connections per second replace each other while CONNECTIONS stay live
 * (less those between their end and their reconnection).
 *
 * Output: a table row per sample (time, connections made so far, the rate
 * over the last interval, connections live, server and client RSS KiB, fds
 * and CPU %), then, after the run, the baseline (the first sample at or
 * after WARMUP seconds), min, max and largest deviation from the baseline
 * of each process's RSS and fds, the RSS trend after warm-up (least
 * squares, KiB per million connections), and
 *   VERDICT PASS|FAIL
 * PASS: every deviation within 5 %, no connection failed, and the client's
 * loop freed cleanly after closing everything (nothing of the library left).
 * Exits 0 on PASS, 1 on FAIL.
 *
 * usage: soak_client PORT SERVER_PID CONNECTIONS RATE DURATION_S WARMUP_S
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <dirent.h>
#include <string.h>
#include <sys/socket.h>

#include "bench_common.h"
#include "soak.h"

#define SAMPLE_MS 10000
#define TICK_MS 10
#define MAX_DEVIATION 0.05
#define CONNECT_TIMEOUT_MS 10000
/* At most this much unspent pacing is kept: a stalled loop does not make up for it in one burst. */
#define MAX_BURST_S 0.1
/* Connection failures printed in full (all are counted). */
#define ERRORS_SHOWN 10

enum phase { SLOT_FREE, SLOT_CONNECTING, SLOT_GREETING, SLOT_OPEN, SLOT_ENDING };
enum ending { END_BYE, END_CLOSE, END_ABORT, END_QUIET, END_KINDS };
static const char *const ending_names[END_KINDS] = {"bye", "close", "abort", "quiet"};
static const char *const hosts[] = {"localhost", "127.0.0.1", "::1"};

struct slot {
  int index;
  enum phase phase;
  enum ending ending;
  unsigned long serial; /* which connection of the run this is */
  async_reader *reader;
  async_future *connect; /* keeps the stream pointer valid while the connection is ours */
  async_stream *stream;
  async_future *read;
  char line[SOAK_MAX_LINE]; /* the line expected back; line_len 0: the server's end of file */
  size_t line_len;
};

struct proc_sample {
  long rss_kib, fds;
  double cpu_s;
};

struct sample {
  double t;
  unsigned long made;
  long live;
  struct proc_sample server, client;
};

static struct {
  async_loop *loop;
  uint16_t port;
  int server_pid;
  long n;
  double rate, duration, warmup;
  struct slot *slots;
  int *free_slots; /* a stack of the free slots */
  long nfree;
  int *open_ring; /* the open connections, oldest first */
  long open_head, open_len;
  double tokens;
  uint64_t last_tick_ms;
  unsigned long started, made, ended[END_KINDS], errors;
  int stopping;
  async_timer *tick, *sampler;
  struct sample *samples;
  int nsamples, max_samples;
  double t0;
} soak;

/* ---- the connections ----------------------------------------------------- */

static void on_connected(async_future *f, int status, void *userdata);
static void on_line(async_future *f, int status, void *userdata);

/*
 * Frees what the slot holds, closing its stream. A connect still pending
 * (only at the end of the run) is cancelled and keeps the reader until
 * on_connected: a reader freed before its stream's connection_made ran is
 * used after free by the connect's release or by connection_made.
 */
static void release_slot(struct slot *s) {
  if (s->read) BENCH_CHECK(async_future_free(s->read));
  void *connected = NULL;
  /* Freeing a connect future that is DONE leaves its stream open: at the end
   * of the run, on_connected may still be queued for a connection made. */
  if (!s->stream && s->connect && async_future_result(&connected, s->connect) == 0) s->stream = connected;
  if (s->stream) BENCH_CHECK(async_stream_close(s->stream));
  int connecting = s->connect && async_future_get_state(s->connect) == ASYNC_FUTURE_PENDING;
  if (s->connect) BENCH_CHECK(async_future_free(s->connect));
  if (s->reader && !connecting) {
    BENCH_CHECK(async_reader_free(s->reader));
    s->reader = NULL;
  }
  s->read = NULL;
  s->stream = NULL;
  s->connect = NULL;
  s->phase = SLOT_FREE;
}

/* status 0: the call succeeded with the wrong bytes. */
static void slot_failed(struct slot *s, const char *what, int status) {
  if (soak.errors++ < ERRORS_SHOWN)
    fprintf(stderr, "soak_client: connection %lu to %s: %s: %s\n", s->serial, hosts[s->index % 3], what,
            status != 0 ? async_err_name(status) : "wrong bytes");
  release_slot(s);
  soak.free_slots[soak.nfree++] = s->index; /* reconnected when the pacing allows */
}

static void connect_slot(struct slot *s) {
  static const async_connect_options options = {.size = sizeof(async_connect_options),
                                                 .total_timeout_ms = CONNECT_TIMEOUT_MS};
  s->serial = soak.started++;
  s->ending = (enum ending)(s->serial % END_KINDS);
  s->phase = SLOT_CONNECTING;
  BENCH_CHECK(async_reader_new(&s->reader, soak.loop, 0));
  BENCH_CHECK(async_tcp_connect(&s->connect, soak.loop, hosts[s->index % 3], soak.port, &options,
                                async_reader_protocol(), s->reader));
  BENCH_CHECK(async_future_add_callback(s->connect, on_connected, s));
}

/* A connection that ended as planned: its slot connects again at once. */
static void end_connection(struct slot *s) {
  soak.ended[s->ending]++;
  release_slot(s);
  connect_slot(s);
}

/* Reads the next line; on_line checks it against s->line. */
static void expect_line(struct slot *s) {
  BENCH_CHECK(async_reader_read_line(&s->read, s->reader, SOAK_MAX_LINE));
  BENCH_CHECK(async_future_add_callback(s->read, on_line, s));
}

/* Sends text (a line) and expects it back. */
static void exchange(struct slot *s, const char *text) {
  s->line_len = strlen(text);
  memcpy(s->line, text, s->line_len);
  int rc = async_stream_write(s->stream, s->line, s->line_len);
  if (rc != 0) {
    slot_failed(s, "write", rc);
    return;
  }
  expect_line(s);
}

static void on_connected(async_future *f, int status, void *userdata) {
  struct slot *s = userdata;
  if (soak.stopping) { /* cancelled by the end of the run */
    if (s->reader) BENCH_CHECK(async_reader_free(s->reader));
    s->reader = NULL;
    return;
  }
  if (status != 0) {
    slot_failed(s, "connect", status);
    return;
  }
  void *stream = NULL;
  BENCH_CHECK(async_future_result(&stream, f));
  s->stream = stream;
  soak.made++;
  s->phase = SLOT_GREETING;
  char hello[SOAK_MAX_LINE];
  snprintf(hello, sizeof hello, "hello %d %lu\n", s->index, s->serial);
  exchange(s, hello);
}

static void retire(struct slot *s) {
  s->phase = SLOT_ENDING;
  char ping[SOAK_MAX_LINE];
  int rc;
  switch (s->ending) {
  case END_BYE:
    exchange(s, SOAK_BYE);
    break;
  case END_CLOSE:
    snprintf(ping, sizeof ping, "ping %lu\n", s->serial);
    exchange(s, ping);
    break;
  case END_ABORT: {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    BENCH_ASSERT(setsockopt(async_stream_fd(s->stream), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    BENCH_CHECK(async_stream_abort(s->stream));
    end_connection(s);
    break;
  }
  case END_QUIET:
    rc = async_stream_write(s->stream, SOAK_QUIET, sizeof SOAK_QUIET - 1);
    if (rc != 0) {
      slot_failed(s, "write", rc);
      break;
    }
    s->line_len = 0;
    expect_line(s);
    break;
  default:
    BENCH_ASSERT(0);
  }
}

static void on_line(async_future *f, int status, void *userdata) {
  struct slot *s = userdata;
  if (soak.stopping) return; /* cancelled by the end of the run */
  s->read = NULL;
  void *bytes = NULL;
  int expected_eof = s->line_len == 0;
  int ok = expected_eof ? status == ASYNC_EEOF
                        : status == 0 && async_future_result(&bytes, f) == 0 && async_bytes_size(bytes) == s->line_len &&
                              memcmp(async_bytes_data(bytes), s->line, s->line_len) == 0;
  BENCH_CHECK(async_future_free(f));
  if (!ok) {
    slot_failed(s, expected_eof ? "waiting for the server's end" : "reading the echo", status);
    return;
  }
  if (s->phase == SLOT_GREETING) {
    s->phase = SLOT_OPEN;
    soak.open_ring[(soak.open_head + soak.open_len++) % soak.n] = s->index;
  } else if (s->ending == END_BYE && !expected_eof) {
    s->line_len = 0; /* "bye" came back: the server's end of file follows */
    expect_line(s);
  } else {
    end_connection(s);
  }
}

/*
 * Spends the pacing tokens: each connects a free slot (while the population
 * ramps up, or after a failure) or else retires the oldest open connection,
 * whose slot connects again once it has ended.
 */
static void on_tick(async_timer *timer, void *userdata) {
  (void)timer;
  (void)userdata;
  uint64_t now;
  BENCH_CHECK(async_loop_now(&now, soak.loop));
  soak.tokens += soak.rate * (double)(now - soak.last_tick_ms) / 1000.0;
  soak.last_tick_ms = now;
  if (soak.tokens > soak.rate * MAX_BURST_S) soak.tokens = soak.rate * MAX_BURST_S;
  for (; soak.tokens >= 1.0; soak.tokens -= 1.0) {
    if (soak.nfree > 0) {
      connect_slot(&soak.slots[soak.free_slots[--soak.nfree]]);
    } else if (soak.open_len > 0) {
      struct slot *oldest = &soak.slots[soak.open_ring[soak.open_head]];
      soak.open_head = (soak.open_head + 1) % soak.n;
      soak.open_len--;
      retire(oldest);
    }
  }
}

/* ---- sampling ------------------------------------------------------------ */

/* VmRSS (KiB), open fds and CPU seconds of pid; rss_kib -1 when the process is gone. */
static struct proc_sample sample_process(int pid) {
  struct proc_sample p = {-1, 0, 0};
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &p.rss_kib) == 1) break;
  if (f) fclose(f);
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  f = fopen(path, "r");
  if (f && fgets(line, sizeof line, f)) {
    unsigned long utime, stime;
    const char *after_name = strrchr(line, ')'); /* the name may hold spaces */
    if (after_name &&
        sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
      p.cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
  }
  if (f) fclose(f);
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR *d = opendir(path);
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.') p.fds++;
  if (d) closedir(d);
  if (pid == getpid()) p.fds--; /* the directory being read */
  return p;
}

static void print_sample(const struct sample *s, const struct sample *prev) {
  double dt = prev ? s->t - prev->t : 0;
  double rate = dt > 0 ? (double)(s->made - prev->made) / dt : 0;
  double srv_cpu = dt > 0 ? 100.0 * (s->server.cpu_s - prev->server.cpu_s) / dt : 0;
  double cli_cpu = dt > 0 ? 100.0 * (s->client.cpu_s - prev->client.cpu_s) / dt : 0;
  printf("| %6.0f | %10lu | %6.0f | %6ld | %11ld | %7ld | %9.0f | %11ld | %7ld | %9.0f |\n", s->t, s->made, rate,
         s->live, s->server.rss_kib, s->server.fds, srv_cpu, s->client.rss_kib, s->client.fds, cli_cpu);
  fflush(stdout);
}

static void stop_run(void) {
  soak.stopping = 1;
  BENCH_CHECK(async_handle_close(async_timer_handle(soak.tick), NULL));
  BENCH_CHECK(async_handle_close(async_timer_handle(soak.sampler), NULL));
  for (long i = 0; i < soak.n; i++)
    if (soak.slots[i].phase != SLOT_FREE) release_slot(&soak.slots[i]);
}

static void take_sample(void) {
  BENCH_ASSERT(soak.nsamples < soak.max_samples);
  struct sample *s = &soak.samples[soak.nsamples++];
  s->t = bench_now() - soak.t0;
  s->made = soak.made;
  s->live = soak.n - soak.nfree;
  s->server = sample_process(soak.server_pid);
  s->client = sample_process(getpid());
  print_sample(s, soak.nsamples > 1 ? s - 1 : NULL);
}

static void on_sample(async_timer *timer, void *userdata) {
  (void)timer;
  (void)userdata;
  take_sample();
  const struct sample *s = &soak.samples[soak.nsamples - 1];
  if (s->server.rss_kib < 0) {
    fprintf(stderr, "soak_client: the server (pid %d) is gone\n", soak.server_pid);
    soak.errors++;
    stop_run();
  } else if (s->t + 0.5 >= soak.duration) {
    stop_run();
  }
}

/* ---- the verdict ----------------------------------------------------------- */

/* Prints baseline, min, max and the largest deviation of one series from samples[base] on; returns the deviation. */
static double report_series(const char *name, const char *unit, int base, long (*get)(const struct sample *)) {
  long b = get(&soak.samples[base]), lo = b, hi = b;
  for (int i = base; i < soak.nsamples; i++) {
    long v = get(&soak.samples[i]);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  double dev = b > 0 ? (double)(hi - b > b - lo ? hi - b : b - lo) / (double)b : 1.0; /* nothing measured: no baseline to hold */
  printf("%-11s baseline %8ld %s, min %8ld, max %8ld, max deviation %5.2f %%\n", name, b, unit, lo, hi, 100.0 * dev);
  return dev;
}

static long server_rss(const struct sample *s) { return s->server.rss_kib; }
static long server_fds(const struct sample *s) { return s->server.fds; }
static long client_rss(const struct sample *s) { return s->client.rss_kib; }
static long client_fds(const struct sample *s) { return s->client.fds; }

/* Least-squares slope of RSS (KiB) against connections made, per million connections. */
static double rss_trend(int base, long (*get)(const struct sample *)) {
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = base; i < soak.nsamples; i++) {
    double x = (double)soak.samples[i].made / 1e6, y = (double)get(&soak.samples[i]);
    n++;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double den = n * sxx - sx * sx;
  return den > 0 ? (n * sxy - sx * sy) / den : 0;
}

static int verdict(int loop_freed) {
  int base = 0;
  while (base < soak.nsamples - 1 && soak.samples[base].t + 0.5 < soak.warmup) base++;
  const struct sample *b = &soak.samples[base], *last = &soak.samples[soak.nsamples - 1];
  printf("\nconnections made: %lu in %.0f s (%.0f/s); after warm-up (from %.0f s): %lu (%.0f/s)\n", last->made,
         last->t, (double)last->made / last->t, b->t, last->made - b->made,
         last->t > b->t ? (double)(last->made - b->made) / (last->t - b->t) : 0);
  printf("ended by");
  for (int k = 0; k < END_KINDS; k++) printf(" %s %lu%s", ending_names[k], soak.ended[k], k + 1 < END_KINDS ? "," : "");
  printf("; failed %lu\n", soak.errors);
  double devs[] = {
      report_series("server RSS", "KiB", base, server_rss),
      report_series("server fds", "   ", base, server_fds),
      report_series("client RSS", "KiB", base, client_rss),
      report_series("client fds", "   ", base, client_fds),
  };
  double dev = 0;
  for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) dev = devs[i] > dev ? devs[i] : dev;
  printf("RSS trend after warm-up: server %+.0f KiB, client %+.0f KiB per million connections\n",
         rss_trend(base, server_rss), rss_trend(base, client_rss));
  if (!loop_freed) printf("the client's loop could not be freed after closing everything\n");
  int pass = dev <= MAX_DEVIATION && soak.errors == 0 && loop_freed && base < soak.nsamples - 1;
  printf("VERDICT %s (largest deviation %.2f %%, limit %.0f %%)\n", pass ? "PASS" : "FAIL", 100.0 * dev,
         100.0 * MAX_DEVIATION);
  return pass;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: soak_client PORT SERVER_PID CONNECTIONS RATE DURATION_S WARMUP_S\n");
    return 2;
  }
  int port = atoi(argv[1]);
  soak.server_pid = atoi(argv[2]);
  soak.n = atol(argv[3]);
  soak.rate = atof(argv[4]);
  soak.duration = atof(argv[5]);
  soak.warmup = atof(argv[6]);
  if (port <= 0 || port > 65535 || soak.server_pid <= 0 || soak.n <= 0 || !(soak.rate >= 1) ||
      !(soak.duration > soak.warmup) || !(soak.warmup >= 0)) {
    fprintf(stderr, "soak_client: bad arguments (duration must exceed warm-up)\n");
    return 2;
  }
  soak.port = (uint16_t)port;
  /* The connections, those closing while their slot reconnects, the loop's own. */
  bench_raise_nofile(soak.n + soak.n / 4 + 64);
  soak.slots = calloc((size_t)soak.n, sizeof *soak.slots);
  soak.free_slots = calloc((size_t)soak.n, sizeof *soak.free_slots);
  soak.open_ring = calloc((size_t)soak.n, sizeof *soak.open_ring);
  soak.max_samples = (int)(soak.duration * 1000 / SAMPLE_MS) + 8; /* room for late timers */
  soak.samples = calloc((size_t)soak.max_samples, sizeof *soak.samples);
  BENCH_ASSERT(soak.slots && soak.free_slots && soak.open_ring && soak.samples);
  for (long i = 0; i < soak.n; i++) {
    soak.slots[i].index = (int)i;
    soak.free_slots[soak.nfree++] = (int)(soak.n - 1 - i); /* slot 0 on top */
  }

  BENCH_CHECK(async_loop_new(&soak.loop));
  BENCH_CHECK(async_timer_new(&soak.tick, soak.loop, NULL));
  BENCH_CHECK(async_timer_new(&soak.sampler, soak.loop, NULL));
  printf("soak: %ld connections, %.0f connections/s, %.0f s (warm-up %.0f s), server pid %d on port %d\n", soak.n,
         soak.rate, soak.duration, soak.warmup, soak.server_pid, port);
  printf("| time s | made       | conn/s | live   | srv RSS KiB | srv fds | srv CPU %% | cli RSS KiB | cli fds | cli CPU %% |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|\n");
  soak.t0 = bench_now();
  take_sample();
  BENCH_CHECK(async_loop_now(&soak.last_tick_ms, soak.loop));
  BENCH_CHECK(async_timer_start(soak.tick, TICK_MS, TICK_MS, on_tick));
  BENCH_CHECK(async_timer_start(soak.sampler, SAMPLE_MS, SAMPLE_MS, on_sample));
  BENCH_CHECK(async_loop_run(soak.loop, ASYNC_RUN_DEFAULT));
  int freed = async_loop_free(soak.loop) == 0;
  return verdict(freed) ? 0 : 1;
}
