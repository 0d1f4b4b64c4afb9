#include "net/process.hpp"

#include <async/error.h>
#include <async/watcher.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "net/child_exec.hpp"
#include "net/process_result.hpp"
#include "net/stream.hpp"
#include "util/alloc.hpp"
#include "util/sys_error.hpp"

namespace async::net {

namespace {

// An ASYNC_STDIO_FIFO pipe's capacity where the system allows it
// (F_SETPIPE_SZ): 64 KiB pipes, Linux's default, wake the loop and the child four times as often
// as a Unix socket's default 208 KiB buffer does (libuv's socketpairs), and
// each wake-up costs more than the copy (bench/run_spawn.sh).
constexpr int kPipeSize = 256 * 1024;

// The fds a spawn opens: the child's ends are closed once it has exec'd,
// the parent's once adopted by a stream (or on failure).
struct StdioFds {
  int child[3] = {-1, -1, -1};
  int parent[3] = {-1, -1, -1};
  StdioFds() = default;
  StdioFds(const StdioFds &) = delete;
  StdioFds &operator=(const StdioFds &) = delete;
  ~StdioFds() {
    close_child();
    for (int &fd : parent)
      if (fd >= 0) ::close(fd);
  }
  void close_child() noexcept {
    for (int &fd : child)
      if (fd >= 0) ::close(std::exchange(fd, -1));
  }
  // 0 or an ASYNC_E* code.
  int open(int i, int mode) noexcept {
    if (mode == ASYNC_STDIO_NULL) {
      child[i] = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      return child[i] < 0 ? util::from_errno(errno) : 0;
    }
    int ends[2];
    // ASYNC_STDIO_PIPE is a socketpair, as libuv's: a pipe allocates and
    // charges a page per 4 KiB written, a Unix socket does not
    // (docs/design.md, Standard streams).
    if (mode != ASYNC_STDIO_FIFO) {
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) < 0) return util::from_errno(errno);
      child[i] = ends[0];
      parent[i] = ends[1];
      return 0;
    }
    if (::pipe2(ends, O_CLOEXEC) < 0) return util::from_errno(errno);
    // Refused above /proc/sys/fs/pipe-max-size or past the user's
    // pipe-user-pages-soft: the default size then, which works as well.
    ::fcntl(ends[0], F_SETPIPE_SZ, kPipeSize);
    // stdin: the child reads; stdout and stderr: the child writes.
    child[i] = ends[i == 0 ? 0 : 1];
    parent[i] = ends[i == 0 ? 1 : 0];
    return 0;
  }
};

}  // namespace

int Process::spawn(Process **out, Loop &loop, const async_process_options &options,
                   const async_stream_protocol (&protocols)[3], void *userdata) noexcept {
  StdioFds fds;
  ChildExec::Plan plan{};
  plan.argv = options.argv;
  plan.envp = options.envp ? options.envp : environ;
  plan.cwd = options.cwd;
  const char *path = std::getenv("PATH");
  plan.path = path ? path : "/bin:/usr/bin";
  plan.flags = options.flags;
  plan.uid = options.uid;
  plan.gid = options.gid;
  for (int i = 0; i < 3; ++i) {
    int mode = options.stdio_mode[i];
    plan.stdio[i] = -1;
    if (mode == ASYNC_STDIO_FD) {
      plan.stdio[i] = options.stdio_fd[i];
    } else if (mode != ASYNC_STDIO_INHERIT) {
      if (int err = fds.open(i, mode)) return err;
      plan.stdio[i] = fds.child[i];
    }
  }
  // Everything that can fail for want of memory comes before the child
  // exists, but the streams (see below).
  Process *p = util::make<Process>(loop, userdata, options.release);
  if (!p) return ASYNC_ENOMEM;
  int pidfd = -1;
  if (int err = ChildExec::spawn(&p->pid_, &pidfd, plan)) {
    util::destroy(p);
    return err;
  }
  fds.close_child();
  p->watch(pidfd);
  for (int i = 0; i < 3; ++i) {
    if (fds.parent[i] < 0) continue;
    Stream *s = nullptr;
    int err = Stream::adopt_bound(&s, loop, fds.parent[i], protocols[i], options.stdio_userdata[i]);
    if (err) {
      // Out of memory with the child running: it must not run unwatched
      // by its caller, so it is killed; the loop reaps it. Streams made
      // already end through their connection_lost (ASYNC_ENOMEM).
      p->kill(SIGKILL);
      for (Stream *made : p->stdio_)
        if (made) made->abort(ASYNC_ENOMEM);
      p->userdata_ = nullptr;
      p->release_ = nullptr;
      p->release_owner();
      return err;
    }
    fds.parent[i] = -1;  // the stream's now
    s->retain();
    p->stdio_[i] = s;
  }
  *out = p;
  return 0;
}

Process::Process(Loop &loop, void *userdata, async_release_fn release) noexcept
    : loop_(loop), userdata_(userdata), release_(release) {
  loop.object_added();  // the loop outlives it: it watches the child
}

Process::~Process() {
  mark_dead();
  loop_.object_removed();
}

void Process::watch(int pidfd) noexcept {
  ev::Backend &backend = loop_.backend();
  ev::Backend::io_init(io_, pidfd, ASYNC_READABLE, on_pidfd, this);
  backend.io_start(io_);
  backend.ref();  // a running child is work for the loop, freed or not
}

void Process::on_pidfd(void *self, std::uint32_t) noexcept {
  auto *p = static_cast<Process *>(self);
  int exit_code = 0;
  int signal = 0;
  int reaped = ChildExec::reap(&exit_code, &signal, ev::Backend::io_fd(p->io_), p->pid_, false);
  if (reaped == 0) return;  // not exited yet (a spurious wake-up)
  p->exited(exit_code, signal, reaped < 0 ? reaped : 0);
}

void Process::exited(int exit_code, int signal, int error) noexcept {
  ev::Backend &backend = loop_.backend();
  int pidfd = ev::Backend::io_fd(io_);
  backend.io_stop(io_);
  ::close(pidfd);
  backend.unref();
  running_ = false;
  exit_code_ = exit_code;
  signal_ = signal;
  wait_error_ = error;
  while (!waiters_.empty()) {
    Future *f = waiters_.pop().future;
    complete(*f);
    f->release();
  }
  if (!owned_) util::destroy(this);
}

void Process::complete(Future &f) const noexcept {
  if (!f.pending()) return;  // cancelled by its holder
  if (wait_error_) {
    f.reject(wait_error_);
    return;
  }
  ProcessResult *r = ProcessResult::create(exit_code_, signal_, nullptr, 0, nullptr, 0);
  if (r)
    f.resolve(r, ProcessResult::destroy, nullptr);
  else
    f.reject(ASYNC_ENOMEM);
}

int Process::wait(Future **out) noexcept {
  Future *f = Future::create(loop_);
  if (!f) return ASYNC_ENOMEM;
  if (running_) {
    if (!waiters_.push(Waiter{f})) {
      f->release_owner();
      return ASYNC_ENOMEM;
    }
    f->retain();
  } else {
    complete(*f);
  }
  *out = f;
  return 0;
}

int Process::kill(int signum) noexcept {
  if (!running_) return ASYNC_ESTATE;
  if (::syscall(SYS_pidfd_send_signal, ev::Backend::io_fd(io_), signum, nullptr, 0) == 0) return 0;
  return errno == ESRCH ? ASYNC_ESTATE : util::from_errno(errno);
}

void Process::release_owner() noexcept {
  owned_ = false;
  for (Stream *&s : stdio_)
    if (s) std::exchange(s, nullptr)->release();
  if (release_) release_(userdata_);
  if (!running_) util::destroy(this);
}

}  // namespace async::net
