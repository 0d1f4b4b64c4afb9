/*
 * frame_pump.c: a 60 Hz "render loop" that owns the thread and gives the
 * event loop a time slice per frame with async_loop_run_for(), while the
 * loop serves a TCP echo, runs a timer and works through a backlog of
 * queued jobs.
 *
 * Each frame: render (simulated: 2 ms of work), run the loop for at most
 * BUDGET_US, then sleep until the next frame (a real engine waits for
 * vsync). ASYNC_RUN_NOWAIT would not do: one iteration runs every queued
 * callback however long that takes. run_for stops running queued
 * callbacks when the budget is spent and leaves the rest, in order, for
 * the next frame; each call polls I/O and runs due timers first, so the
 * echo and the timer are served every frame however big the backlog.
 *
 *   ./frame_pump PORT          serves an echo on PORT until killed
 *   ./frame_pump --self-test   one second of frames with its own client,
 *                              then checks what was served and exits
 *
 * Build: cc frame_pump.c $(pkg-config --cflags --libs libasync)
 */
#define _POSIX_C_SOURCE 200809L /* clock_nanosleep */

#include <async.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FRAME_NS 16666667ull /* 60 Hz */
#define RENDER_NS 2000000ull /* simulated rendering per frame */
#define BUDGET_US 4000       /* the event loop's slice of each frame */
#define JOBS 2000            /* backlog: about 10 frames' worth of budget */
#define JOB_NS 20000ull      /* each job's work */

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

static unsigned long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static void busy(unsigned long long ns) {
  unsigned long long end = now_ns() + ns;
  while (now_ns() < end) {
  }
}

struct game {
  int jobs_done, ticks, echoes;
  async_stream *client; /* --self-test: our own client */
};

static void job(async_loop *loop, void *userdata) {
  (void)loop;
  busy(JOB_NS);
  ((struct game *)userdata)->jobs_done++;
}

static void tick(async_timer *timer, void *userdata) {
  (void)timer;
  struct game *g = userdata;
  g->ticks++;
  if (g->client) check(async_stream_write(g->client, "ping\n", 5), "write");
}

/* The server echoes; our client counts what comes back. */
static size_t echo(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)userdata;
  async_stream_write(stream, data, len);
  return len;
}

static size_t count_echo(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)stream;
  for (size_t i = 0; i < len; i++) ((struct game *)userdata)->echoes += data[i] == '\n';
  return len;
}

static void lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)error;
  (void)userdata;
}

static const async_stream_protocol echo_protocol = {
    sizeof(async_stream_protocol), NULL, echo, NULL, lost, NULL, NULL, NULL, NULL, 0, NULL,
};

static int echo_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  (void)userdata;
  *p = &echo_protocol;
  *ud = NULL;
  return 0;
}

int main(int argc, char **argv) {
  int self_test = argc == 2 && strcmp(argv[1], "--self-test") == 0;
  long port = self_test ? 0 : argc == 2 ? strtol(argv[1], NULL, 10) : -1;
  if (port < 0 || port > 65535) {
    fprintf(stderr, "usage: frame_pump PORT | --self-test\n");
    return 2;
  }
  struct game g = {0};
  async_loop *loop;
  check(async_loop_new(&loop), "async_loop_new");
  async_server *server;
  check(async_tcp_listen(&server, loop, "127.0.0.1", (uint16_t)port, 0, 0, echo_factory, NULL), "listen");
  async_timer *timer;
  check(async_timer_new(&timer, loop, &g), "timer");
  check(async_timer_start(timer, 50, 50, tick), "timer start");
  for (int i = 0; i < JOBS; i++) check(async_loop_call_soon(loop, job, &g), "call_soon");
  async_future *connecting = NULL;
  if (self_test) {
    async_stream_protocol client = ASYNC_STREAM_PROTOCOL_INIT;
    client.data_received = count_echo;
    client.connection_lost = lost;
    check(async_tcp_connect(&connecting, loop, "127.0.0.1", (uint16_t)async_server_port(server), NULL, &client, &g),
          "connect");
  }

  unsigned long long next = now_ns(), worst_slice = 0;
  for (int frame = 0; !self_test || frame < 60; frame++) {
    busy(RENDER_NS); /* render() */
    unsigned long long start = now_ns();
    check(async_loop_run_for(loop, BUDGET_US), "run_for");
    unsigned long long slice = now_ns() - start;
    if (slice > worst_slice) worst_slice = slice;
    if (connecting && !g.client && async_future_get_state(connecting) == ASYNC_FUTURE_DONE) {
      void *stream;
      check(async_future_result(&stream, connecting), "connect result");
      g.client = stream;
    }
    next += FRAME_NS;
    struct timespec at = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL); /* vsync */
  }

  printf("60 frames: %d ticks, %d echoes, %d/%d jobs, longest loop slice %.2f ms (budget %.2f ms)\n", g.ticks, g.echoes,
         g.jobs_done, JOBS, (double)worst_slice / 1e6, BUDGET_US / 1000.0);
  /* Served every frame despite the backlog, and the backlog done in order. */
  int ok = g.ticks >= 10 && g.echoes >= 5 && g.jobs_done == JOBS;
  check(async_future_free(connecting), "async_future_free");
  check(async_stream_close(g.client), "close client");
  check(async_server_close_connections(server, 0), "close connections");
  check(async_handle_close(async_server_handle(server), NULL), "close server");
  check(async_handle_close(async_timer_handle(timer), NULL), "close timer");
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  return ok ? 0 : 1;
}
