// ev::Backend's direct fd handlers (io_init_direct): libev calls the
// owner's handler itself. When libev gives up on a watcher, here its fd
// closed behind its back, which select reports as EBADF, io_revents()
// reports every event the watcher watched, and the watcher no longer
// counts as a source. Linked with the library's objects, as
// test_containers is; the select backend is the one that reports it
// (Debian's libev asserts on it under epoll and poll).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {  // cmocka.h declares its functions without C linkage
#include <cmocka.h>
}

#include <async/watcher.h>
#include <ev.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "ev/ev_backend.hpp"
#include "util/container_of.hpp"

using async::ev::Backend;
using async::ev::IoSlot;

namespace {

struct Probe {
  IoSlot slot;
  int calls = 0;
  int raw = 0;               // revents as libev passed them
  std::uint32_t events = 0;  // as io_revents() made them
};

void on_fd(struct ev_loop *loop, struct ev_io *w, int revents) noexcept {
  Probe *p = async::util::container_of(&Backend::io_slot(w), &Probe::slot);
  ++p->calls;
  p->raw = revents;
  p->events = Backend::io_revents(loop, w, revents);
}

void woken(void *) {}

// p watching the read end of a new pipe (fds) on b, on select, whatever
// LIBEV_FLAGS the run has.
void watch_pipe(Backend &b, Probe &p, int fds[2]) {
  const char *was = std::getenv("LIBEV_FLAGS");
  char *saved = was ? strdup(was) : nullptr;
  assert_int_equal(setenv("LIBEV_FLAGS", "1", 1), 0);
  assert_int_equal(b.open(async::ev::LoopEvents{nullptr, woken}), 0);
  assert_int_equal(saved ? setenv("LIBEV_FLAGS", saved, 1) : unsetenv("LIBEV_FLAGS"), 0);
  std::free(saved);
  assert_int_equal(pipe(fds), 0);
  Backend::io_init_direct(p.slot, fds[0], ASYNC_READABLE, on_fd);
  b.io_start(p.slot);
}

void test_killed_watcher_reported_and_uncounted(void **) {
  Backend b;
  Probe p;
  int fds[2];
  watch_pipe(b, p, fds);
  b.poll(false);  // watched from now on; nothing to read
  assert_int_equal(p.calls, 0);
  b.track_changes();
  assert_true(b.changes_pending());  // the watch counts as a source

  assert_int_equal(close(fds[0]), 0);  // behind the watcher's back
  b.poll(false);
  assert_int_equal(p.calls, 1);
  assert_true(p.raw & EV_ERROR);
  assert_int_equal(p.events, ASYNC_READABLE);  // what it watched, not EV_WRITE too
  assert_false(Backend::io_active(p.slot));    // libev stopped it
  b.track_changes();  // a change now: pending while any source counts
  assert_false(b.changes_pending());
  b.io_stop(p.slot);  // stopped already: nothing to undo twice
  assert_false(b.changes_pending());
  close(fds[1]);
}

// The plain event goes through io_revents() unchanged.
void test_plain_event_passes_through(void **) {
  Backend b;
  Probe p;
  int fds[2];
  watch_pipe(b, p, fds);
  assert_int_equal(write(fds[1], "x", 1), 1);
  b.poll(false);
  assert_int_equal(p.calls, 1);
  assert_int_equal(p.raw, EV_READ);
  assert_int_equal(p.events, ASYNC_READABLE);
  assert_true(Backend::io_active(p.slot));
  b.io_stop(p.slot);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_killed_watcher_reported_and_uncounted),
      cmocka_unit_test(test_plain_event_passes_through),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
