#include "api/api.hpp"
#include "core/future.hpp"
#include "core/watcher.hpp"
#include "net/process.hpp"
#include "net/process_result.hpp"
#include "net/process_run.hpp"
#include "net/stream.hpp"
#include "util/sized_struct.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::refused;
using async::api::refused_loop;
using async::api::tagged_as;
using async::core::Future;
using async::core::Loop;
using async::net::Process;
using async::net::ProcessResult;
using async::net::ProcessRun;
using async::net::Stream;
using async::util::copy_sized;

namespace {

constexpr std::uint32_t kKnownFlags = ASYNC_PROCESS_NEW_GROUP | ASYNC_PROCESS_NEW_SESSION | ASYNC_PROCESS_SET_UID |
                                      ASYNC_PROCESS_SET_GID | ASYNC_PROCESS_RESET_SIGMASK;

bool valid_argv(const char *const *argv) { return argv && argv[0] && argv[0][0] != '\0'; }

// The options async_process_spawn() accepts, with the pipes' protocols copied.
bool valid_options(const async_process_options &o, async_stream_protocol (&protocols)[3]) {
  if (!valid_argv(o.argv) || (o.flags & ~kKnownFlags) != 0) return false;
  if ((o.flags & ASYNC_PROCESS_NEW_GROUP) && (o.flags & ASYNC_PROCESS_NEW_SESSION)) return false;
  for (int i = 0; i < 3; ++i) {
    switch (o.stdio_mode[i]) {
      case ASYNC_STDIO_INHERIT:
      case ASYNC_STDIO_NULL: break;
      case ASYNC_STDIO_FD:
        if (o.stdio_fd[i] < 0) return false;
        break;
      case ASYNC_STDIO_PIPE:
      case ASYNC_STDIO_SOCKETPAIR:
      case ASYNC_STDIO_FIFO:
        if (!Stream::copy_protocol(protocols[i], o.stdio_protocol[i])) return false;
        break;
      default: return false;
    }
  }
  return true;
}

// A process its owner has not freed.
Process *owned(async_process *proc) {
  Process *p = checked<Process>(proc);
  return p && !p->owner_released() ? p : nullptr;
}

}  // namespace

extern "C" {

ASYNC_API int async_process_spawn(async_process **out, async_loop *loop, const async_process_options *options,
                                  void *userdata) {
  Loop *l = checked_loop(loop);
  async_process_options copied;
  async_stream_protocol protocols[3] = {};
  if (!out || !l || !options || copy_sized(copied, options) != 0 || !valid_options(copied, protocols))
    return refused_loop(loop);
  for (int i = 0; i < 3; ++i)
    if (copied.stdio_mode[i] == ASYNC_STDIO_FD && async::core::check_fd(copied.stdio_fd[i]) != 0) return ASYNC_EBADF;
  return guarded([&]() -> int {
    Process *p = nullptr;
    int err = Process::spawn(&p, *l, copied, protocols, userdata);
    if (!err) *out = p->c_process();
    return err;
  });
}

ASYNC_API int async_process_wait(async_future **out, async_process *proc) {
  Process *p = owned(proc);
  if (!out || !p) return refused<Process>(proc);
  return guarded([&]() -> int {
    Future *f = nullptr;
    int err = p->wait(&f);
    if (!err) *out = f->c_future();
    return err;
  });
}

ASYNC_API int async_process_kill(async_process *proc, int signum) {
  Process *p = owned(proc);
  if (!p || signum < 0 || signum > 64) return refused<Process>(proc);
  return guarded([&] { return p->kill(signum); });
}

ASYNC_API int async_process_pid(async_process *proc) {
  Process *p = owned(proc);
  return p ? static_cast<int>(p->pid()) : refused<Process>(proc);
}

ASYNC_API int async_process_stream(async_stream **out, async_process *proc, int fd) {
  Process *p = owned(proc);
  if (!out || !p || fd < 0 || fd > 2) return refused<Process>(proc);
  Stream *s = p->stream(fd);
  if (!s) return ASYNC_ESTATE;
  *out = s->c_stream();
  return 0;
}

ASYNC_API void *async_process_userdata(async_process *proc) {
  Process *p = owned(proc);
  return p ? p->userdata() : nullptr;
}

ASYNC_API int async_process_free(async_process *proc) {
  Process *p = owned(proc);
  if (!p) return refused<Process>(proc);
  return guarded([&]() -> int {
    p->release_owner();
    return 0;
  });
}

ASYNC_API int async_process_run(async_future **out, async_loop *loop, const char *const *argv,
                                const uint8_t *stdin_data, size_t stdin_len, size_t limit) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !valid_argv(argv) || (!stdin_data && stdin_len > 0)) return refused_loop(loop);
  return guarded([&]() -> int {
    Future *f = nullptr;
    int err = ProcessRun::start(&f, *l, argv, stdin_data, stdin_len, limit);
    if (!err) *out = f->c_future();
    return err;
  });
}

ASYNC_API int async_process_result_status(int *out_exit_code, int *out_signal, const async_process_result *result) {
  const auto *r = tagged_as<ProcessResult>(result);
  if (!r) return ASYNC_EINVAL;
  if (out_exit_code) *out_exit_code = r->exit_code();
  if (out_signal) *out_signal = r->signal();
  return 0;
}

ASYNC_API int async_process_result_output(const uint8_t **out_data, size_t *out_len, const async_process_result *result,
                                          int fd) {
  const auto *r = tagged_as<ProcessResult>(result);
  if (!out_data || !out_len || !r || (fd != 1 && fd != 2)) return ASYNC_EINVAL;
  *out_data = r->output(fd);
  *out_len = r->output_size(fd);
  return 0;
}
}
