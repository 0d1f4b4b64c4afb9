/*
 * A GLib GMainLoop drives a libasync loop through a GSource made from
 * async_loop_fd() alone (g_unix_fd_source_new: no prepare, no timeout of
 * its own): timers, posts from a thread, a watcher started between runs,
 * a TCP echo (embed_host.h), a DNS lookup against dnsmasq and a DNS
 * timeout against a silent server (c-ares' own timers, which libev keeps).
 * Under the select and poll backends async_loop_fd() returns
 * ASYNC_ENOTSUP, which the tests assert.
 */
#include <glib-unix.h>
#include <glib.h>

#include "dns_fixture.h"
#include "embed_host.h"

struct glib_host {
  struct eh *h;
  GMainLoop *main;
};

static gboolean on_loop_fd(gint fd, GIOCondition condition, gpointer ud) {
  (void)fd;
  (void)condition;
  struct glib_host *g = ud;
  g->h->wakeups++;
  async_loop_run(g->h->loop, ASYNC_RUN_NOWAIT);
  if (g->h->done) g_main_loop_quit(g->main);
  return G_SOURCE_CONTINUE;
}

/* Runs a GMainLoop until the scenario is done (the guard bounds it). */
static void glib_run(struct eh *h) {
  GMainContext *ctx = g_main_context_new();
  struct glib_host g = {h, g_main_loop_new(ctx, FALSE)};
  GSource *src = g_unix_fd_source_new(h->fd, G_IO_IN);
  g_source_set_callback(src, G_SOURCE_FUNC(on_loop_fd), &g, NULL);
  g_source_attach(src, ctx);
  g_main_loop_run(g.main);
  g_source_destroy(src);
  g_source_unref(src);
  g_main_loop_unref(g.main);
  g_main_context_unref(ctx);
}

static int fd_supported(void) {
  async_loop *loop = tu_loop_new();
  int fd = -1;
  int rc = async_loop_fd(&fd, loop);
  assert_int_equal(rc, tu_backend() == TU_EPOLL ? 0 : ASYNC_ENOTSUP);
  assert_int_equal(async_loop_free(loop), 0);
  return rc == 0;
}

/* Timers, posts from a thread, a watcher, a TCP echo. */
static void test_glib_host(void **state) {
  (void)state;
  if (!fd_supported()) return;
  struct eh h;
  eh_init(&h);
  eh_start_all(&h);
  glib_run(&h);
  eh_finish(&h);
}

/* ---- DNS --------------------------------------------------------------- */

struct lookup {
  struct eh *h;
  int status;
};

static void lookup_done(async_future *f, int status, void *ud) {
  (void)f;
  struct lookup *l = ud;
  l->status = status;
  eh_part_done(l->h);
}

/* Starts a lookup between runs; the GMainLoop runs until it completes. */
static int glib_lookup(struct eh *h, const char *name, async_future **f) {
  struct lookup l = {h, 1};
  assert_int_equal(async_getaddrinfo(f, h->loop, name, NULL, AF_INET, 0, 0), 0);
  assert_int_equal(async_future_add_callback(*f, lookup_done, &l), 0);
  h->pending = 1;
  glib_run(h);
  assert_false(h->timed_out);
  return l.status;
}

static void test_glib_dns(void **state) {
  (void)state;
  if (!fd_supported()) return;
  struct dnsfx fx;
  assert_int_equal(dnsfx_start(&fx), 0); /* dnsmasq-base is in packages.txt */
  struct eh h;
  eh_init(&h);
  assert_int_equal(async_dns_set_servers(h.loop, fx.servers), 0);
  async_future *f = NULL;
  assert_int_equal(glib_lookup(&h, "v4only.test", &f), 0);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, f), 0);
  assert_int_equal(async_addrinfo_count(v), 1);
  assert_int_equal(async_future_free(f), 0);
  eh_finish(&h);
  dnsfx_stop(&fx);
}

/* A server that never answers: only c-ares' timeout (a libev timer of the
 * loop, not a libasync timer) ends the lookup, through the fd's timerfd. */
static void test_glib_dns_timeout(void **state) {
  (void)state;
  if (!fd_supported()) return;
  struct dnsfx_hole hole;
  assert_int_equal(dnsfx_blackhole_open(&hole), 0);
  struct eh h;
  eh_init(&h);
  assert_int_equal(async_dns_set_servers(h.loop, hole.servers), 0);
  assert_int_equal(async_dns_set_timeout(h.loop, 200, 1), 0);
  async_future *f = NULL;
  uint64_t t0 = tu_now_ns();
  int status = glib_lookup(&h, "silent.test", &f);
  assert_true(status < 0);
  assert_true(tu_elapsed_ms(t0) >= 200);
  assert_true(h.wakeups < 10); /* no busy waiting for the timeout (2 here) */
  assert_int_equal(async_future_free(f), 0);
  eh_finish(&h);
  dnsfx_blackhole_close(&hole);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_glib_host),
      cmocka_unit_test(test_glib_dns),
      cmocka_unit_test(test_glib_dns_timeout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
