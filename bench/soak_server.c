/*
 * Soak benchmark server (bench/soak.sh): a libasync line server on
 * "localhost" (::1 and 127.0.0.1, one port) speaking bench/soak.h. Every
 * accepted connection gets a userdata of its own (released through the
 * protocol's release), an idle timeout, lines parsed with consumed-bytes
 * reads (a partial line stays in the stream until its end arrives), echoes
 * with async_stream_write and a zero-copy "bye". Connections end in four
 * ways: closed by the server after "bye", by its idle timeout after
 * "quiet", by the client's FIN or by the client's RST.
 *
 * Prints "READY port=P", runs until SIGTERM or SIGINT, then aborts what is
 * left, closes its handles, frees the loop (which fails if anything of the
 * library is still alive) and prints its counters:
 *   SERVER accepted=N lost_clean=N lost_reset=N lost_timeout=N lost_other=N live_userdata=N
 * Exits 1 when a counter does not add up (a stream never lost, a userdata
 * never released) or when the loop cannot be freed.
 *
 * usage: soak_server CONNECTIONS   (the fd limit is raised to fit them)
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <signal.h>
#include <string.h>

#include "bench_common.h"
#include "soak.h"

struct conn {
  unsigned lines; /* lines answered on this connection */
};

static struct {
  long accepted, lost_clean, lost_reset, lost_timeout, lost_other, live_userdata;
} count;

static void conn_made(async_stream *stream, void *userdata) {
  (void)userdata;
  count.accepted++;
  BENCH_CHECK(async_stream_set_idle_timeout(stream, SOAK_IDLE_MS));
}

static void bye_sent(void *userdata) { (void)userdata; }

/* Answers one line (with its '\n'); 0 once the stream is closing. */
static int answer(async_stream *stream, struct conn *c, const uint8_t *line, size_t len) {
  c->lines++;
  if (len == sizeof SOAK_BYE - 1 && memcmp(line, SOAK_BYE, len) == 0) {
    BENCH_CHECK(async_stream_write_zc(stream, SOAK_BYE, len, bye_sent, NULL));
    BENCH_CHECK(async_stream_close(stream));
    return 0;
  }
  if (len == sizeof SOAK_QUIET - 1 && memcmp(line, SOAK_QUIET, len) == 0) {
    BENCH_CHECK(async_stream_set_idle_timeout(stream, SOAK_QUIET_MS));
    return 1;
  }
  BENCH_CHECK(async_stream_write(stream, line, len));
  return 1;
}

static size_t conn_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  size_t used = 0;
  while (used < len) {
    const uint8_t *nl = memchr(data + used, '\n', len - used);
    if (!nl) break;
    size_t line = (size_t)(nl - (data + used)) + 1;
    if (!answer(stream, userdata, data + used, line)) return len;
    used += line;
  }
  if (len - used > SOAK_MAX_LINE) {
    fprintf(stderr, "soak_server: a line longer than %d bytes\n", SOAK_MAX_LINE);
    exit(1);
  }
  return used;
}

static void conn_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)userdata;
  if (error == 0)
    count.lost_clean++;
  else if (error == ASYNC_ECONNRESET)
    count.lost_reset++;
  else if (error == ASYNC_ETIMEDOUT)
    count.lost_timeout++;
  else if (count.lost_other++ < 10)
    fprintf(stderr, "soak_server: connection lost with %s\n", async_err_name(error));
}

static void conn_release(void *userdata) {
  free(userdata);
  count.live_userdata--;
}

static const async_stream_protocol soak_protocol = {
    sizeof(async_stream_protocol), conn_made, conn_data, NULL, conn_lost, NULL, NULL, NULL, conn_release, 0, NULL,
};

static int factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  (void)userdata;
  struct conn *c = calloc(1, sizeof *c);
  if (!c) return -1;
  count.live_userdata++;
  *p = &soak_protocol;
  *ud = c;
  return 0;
}

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  (void)signum;
  async_loop_stop(userdata);
}

int main(int argc, char **argv) {
  long connections = argc == 2 ? atol(argv[1]) : 0;
  if (connections <= 0) {
    fprintf(stderr, "usage: soak_server CONNECTIONS\n");
    return 2;
  }
  /* The connections, those the client already replaced but whose end is not read yet, the loop's own. */
  bench_raise_nofile(connections + connections / 4 + 64);
  async_loop *loop;
  BENCH_CHECK(async_loop_new(&loop));
  async_server *server;
  BENCH_CHECK(async_tcp_listen(&server, loop, "localhost", 0, SOAK_BACKLOG, 0, factory, NULL));
  async_signal *term, *intr;
  BENCH_CHECK(async_signal_new(&term, loop, loop));
  BENCH_CHECK(async_signal_new(&intr, loop, loop));
  BENCH_CHECK(async_signal_start(term, SIGTERM, on_signal));
  BENCH_CHECK(async_signal_start(intr, SIGINT, on_signal));
  printf("READY port=%d\n", async_server_port(server));
  fflush(stdout);
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));

  BENCH_CHECK(async_server_close_connections(server, 1));
  BENCH_CHECK(async_handle_close(async_server_handle(server), NULL));
  BENCH_CHECK(async_handle_close(async_signal_handle(term), NULL));
  BENCH_CHECK(async_handle_close(async_signal_handle(intr), NULL));
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  int freed = async_loop_free(loop);
  long lost = count.lost_clean + count.lost_reset + count.lost_timeout + count.lost_other;
  printf("SERVER accepted=%ld lost_clean=%ld lost_reset=%ld lost_timeout=%ld lost_other=%ld live_userdata=%ld\n",
         count.accepted, count.lost_clean, count.lost_reset, count.lost_timeout, count.lost_other,
         count.live_userdata);
  if (freed != 0) fprintf(stderr, "soak_server: async_loop_free: %s\n", async_err_name(freed));
  if (lost != count.accepted || count.live_userdata != 0)
    fprintf(stderr, "soak_server: %ld accepted, %ld lost, %ld userdata not released\n", count.accepted, lost,
            count.live_userdata);
  return freed == 0 && lost == count.accepted && count.live_userdata == 0 ? 0 : 1;
}
