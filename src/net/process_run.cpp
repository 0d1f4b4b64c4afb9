#include "net/process_run.hpp"

#include <async/error.h>
#include <signal.h>

#include <utility>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "net/process.hpp"
#include "net/process_result.hpp"
#include "net/stream.hpp"
#include "util/alloc.hpp"

namespace async::net {

namespace {

std::size_t ignore_input(async_stream *, const std::uint8_t *, std::size_t len, void *) noexcept { return len; }

}  // namespace

const async_stream_protocol ProcessRun::kInput = {
    sizeof(async_stream_protocol),
    on_input_made,
    ignore_input,
    nullptr,
    on_input_lost,
    nullptr,
    nullptr,
    nullptr,
    on_release,
    0,
    nullptr,
};
const async_stream_protocol ProcessRun::kOutput = {
    sizeof(async_stream_protocol),
    nullptr,
    on_output,
    nullptr,
    on_output_lost,
    nullptr,
    nullptr,
    nullptr,
    on_release,
    0,
    nullptr,
};

int ProcessRun::start(Future **out, Loop &loop, const char *const *argv, const std::uint8_t *input,
                      std::size_t input_len, std::size_t limit) noexcept {
  ProcessRun *run = util::make<ProcessRun>(limit ? limit : kDefaultLimit);
  if (!run) return ASYNC_ENOMEM;
  Future *future = Future::create(loop);
  if (!future || (input && !run->input_.append(input, input_len))) {
    if (future) future->release_owner();
    util::destroy(run);
    return ASYNC_ENOMEM;
  }
  async_process_options options{};
  options.size = sizeof options;
  options.argv = argv;
  // Real pipes, as a shell gives: a program that opens /dev/stdin works
  // too, and a child gone before reading its input is EPIPE (ignored).
  options.stdio_mode[0] = input ? ASYNC_STDIO_FIFO : ASYNC_STDIO_NULL;
  options.stdio_mode[1] = ASYNC_STDIO_FIFO;
  options.stdio_mode[2] = ASYNC_STDIO_FIFO;
  const async_stream_protocol protocols[3] = {kInput, kOutput, kOutput};
  for (void *&userdata : options.stdio_userdata) userdata = run;
  Process *p = nullptr;
  Future *exit = nullptr;
  int err = Process::spawn(&p, loop, options, protocols, run);
  run->process_ = p;
  if (!err) {
    // Each stream made holds the run until its release.
    for (int i = 0; i < 3; ++i) run->refs_ += p->stream(i) ? 1 : 0;
    err = p->wait(&exit);
    if (!err) err = exit->add_callback(on_exit, run);
    if (err) {
      // The child runs and its streams hold the run: kill it and let them
      // end; the future goes, so nothing completes.
      p->kill(SIGKILL);
      if (exit) exit->release_owner();
      p->release_owner();
      run->process_ = nullptr;
      future->release_owner();
      run->unref();
      return err;
    }
  }
  if (err) {
    future->release_owner();
    util::destroy(run);
    return err;
  }
  future->retain();
  run->future_ = future;
  future->set_cancel(on_cancel, run);
  *out = future;
  return 0;
}

void ProcessRun::on_input_made(async_stream *stream, void *self) noexcept {
  auto *run = static_cast<ProcessRun *>(self);
  Stream *s = Stream::from(stream);
  iovec iov{const_cast<std::uint8_t *>(run->input_.data()), run->input_.size()};
  // Copies what the pipe does not take at once; an error ends the stream.
  if (iov.iov_len) s->write(&iov, 1, nullptr, nullptr);
  run->input_.release();
  s->write_eof();
}

void ProcessRun::on_input_lost(async_stream *, int, void *) noexcept {
  // A child that exits or closes its stdin before reading it all
  // (ASYNC_EPIPE) is not an error: communicate() ignores it too.
}

std::size_t ProcessRun::on_output(async_stream *stream, const std::uint8_t *data, std::size_t len,
                                  void *self) noexcept {
  auto *run = static_cast<ProcessRun *>(self);
  // Dropped once the child is killed or nobody waits.
  if (run->failure_ || !run->future_ || !run->future_->pending()) return len;
  util::ByteQueue &q = Stream::from(stream) == run->process_->stream(1) ? run->out_ : run->err_;
  if (run->out_.size() + run->err_.size() + len > run->limit_)
    run->failure_ = ASYNC_ENOBUFS;
  else if (!q.append(data, len))
    run->failure_ = ASYNC_ENOMEM;
  if (run->failure_) {
    run->out_.release();
    run->err_.release();
    run->process_->kill(SIGKILL);
  }
  return len;
}

void ProcessRun::on_output_lost(async_stream *, int, void *self) noexcept {
  auto *run = static_cast<ProcessRun *>(self);
  --run->outputs_open_;
  run->maybe_finish();
}

void ProcessRun::on_release(void *self) noexcept { static_cast<ProcessRun *>(self)->unref(); }

void ProcessRun::on_exit(async_future *future, int status, void *self) noexcept {
  auto *run = static_cast<ProcessRun *>(self);
  Future *f = Future::from(future);
  run->exited_ = true;
  if (status == 0) {
    const auto *r = static_cast<const ProcessResult *>(f->value());
    run->exit_code_ = r->exit_code();
    run->signal_ = r->signal();
  } else {
    run->exit_error_ = status;
  }
  f->release_owner();
  run->maybe_finish();
  run->unref();
}

void ProcessRun::on_cancel(async_future *, int cancelled, void *self) noexcept {
  auto *run = static_cast<ProcessRun *>(self);
  if (cancelled && run->process_) run->process_->kill(SIGKILL);
}

void ProcessRun::maybe_finish() noexcept {
  if (!exited_ || outputs_open_ > 0 || !future_) return;
  Future *f = std::exchange(future_, nullptr);
  if (f->pending()) {
    int error = failure_ ? failure_ : exit_error_;
    ProcessResult *r = nullptr;
    if (!error) {
      r = ProcessResult::create(exit_code_, signal_, out_.data(), out_.size(), err_.data(), err_.size());
      if (!r) error = ASYNC_ENOMEM;
    }
    if (r)
      f->resolve(r, ProcessResult::destroy, nullptr);
    else
      f->reject(error);
  }
  f->release();
  out_.release();
  err_.release();
  std::exchange(process_, nullptr)->release_owner();
}

void ProcessRun::unref() noexcept {
  if (--refs_ == 0) util::destroy(this);
}

}  // namespace async::net
