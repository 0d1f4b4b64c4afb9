// async_reconnector (DESIGN §7, reconnecting client): keeps one connection
// up through Connector, with a backoff policy between connects. Each
// connection's stream runs a forwarding protocol whose userdata is the
// reconnector, so it sees every connection_made/lost while the user's
// protocol sees its callbacks as for any stream, and the user's release
// runs once, at the end.
#pragma once

#include <async/reconnect.h>

#include <cstddef>
#include <cstdint>

#include "ev/ev_backend.hpp"
#include "net/core_names.hpp"
#include "net/upgrade.hpp"
#include "util/list.hpp"
#include "util/tagged.hpp"

namespace async::net {

class Stream;

class Reconnector : public util::Tagged<0x52434f4e> {  // "RCON"
 public:
  // 0, or ASYNC_EINVAL/ENOMEM with nothing started and userdata the caller's.
  // upgrade: what src/api made of options.connect->tls (Connector::start()).
  static int start(Reconnector **out, Loop &loop, const char *host, std::uint16_t port,
                   const async_reconnect_options &options, const Upgrade &upgrade,
                   const async_stream_protocol &protocol, void *userdata) noexcept;
  static Reconnector *from(async_reconnector *rc) noexcept { return reinterpret_cast<Reconnector *>(rc); }
  async_reconnector *c_reconnector() noexcept { return reinterpret_cast<async_reconnector *>(this); }

  int reconnect() noexcept;
  void stop() noexcept;
  // Stops as stop() does, stopped() getting error (async_loop_shutdown).
  void stop(int error) noexcept;
  int state() const noexcept;
  async_stream *stream() const noexcept;
  Loop &loop() const noexcept { return loop_; }
  static Reconnector *from_registry_node(util::ListNode *node) noexcept;

  // Use start(); public only for util::make/destroy.
  Reconnector(Loop &loop, const async_stream_protocol &protocol, void *userdata) noexcept;
  ~Reconnector();

 private:
  // The forwarding protocol's callbacks (userdata: the reconnector).
  static void fwd_made(async_stream *s, void *self) noexcept;
  static std::size_t fwd_data(async_stream *s, const std::uint8_t *data, std::size_t len, void *self) noexcept;
  static int fwd_eof(async_stream *s, void *self) noexcept;
  static void fwd_lost(async_stream *s, int error, void *self) noexcept;
  // pause_writing, resume_writing, write_drained, idle_timeout: passed on as they are.
  using StreamEvent = void (*async_stream_protocol::*)(async_stream *, void *);
  template <StreamEvent Event>
  static void fwd_event(async_stream *s, void *self) noexcept;
  static void fwd_release(void *self) noexcept;

  static void on_connected(async_future *future, int status, void *self) noexcept;
  static void on_timer(void *self, std::uint32_t) noexcept;
  static void run_stopped(async_loop *, void *self) noexcept;

  int copy_config(const char *host, std::uint16_t port, const async_reconnect_options &options) noexcept;
  // Starts a connect: 0, or the error async_tcp_connect() would return.
  int start_connect() noexcept;
  void connect_failed(int error) noexcept;
  void wait(std::uint64_t delay_ms) noexcept;
  // The next backoff delay after failures_ consecutive failures (1: initial).
  std::uint64_t backoff_ms() noexcept;
  // After a connect ended or a stream was lost: wait, connect or finish.
  void next_step() noexcept;
  void begin_stop(int error) noexcept;
  void maybe_finish() noexcept;
  void release() noexcept;

  Loop &loop_;
  util::ListNode registry_node_;  // on the loop's registry until stopped has run
  async_stream_protocol user_{};  // the user's, with its userdata
  void *userdata_;
  async_stream_protocol forward_{};

  char host_[256] = {};
  std::uint16_t port_ = 0;
  async_connect_options connect_{};
  char local_address_[128] = {};
  char server_name_[256] = {};
  Upgrade upgrade_;  // each connect's layer (a TLS context keeps its sessions for the next one)
  std::uint64_t initial_ms_ = 0;
  std::uint64_t max_ms_ = 0;
  double multiplier_ = 1.0;
  double jitter_ = 0.0;
  std::uint32_t max_attempts_ = 0;
  void (*on_connect_failed_)(async_reconnector *, int, std::uint32_t, std::uint64_t, void *) = nullptr;
  void (*on_stopped_)(async_reconnector *, int, void *) = nullptr;

  Future *future_ = nullptr;  // the connect in flight, until on_connected
  Stream *stream_ = nullptr;  // between connection_made and connection_lost
  ev::TimerSlot timer_;
  bool waiting_ = false;
  bool made_ = false;           // the connect in flight made its stream
  bool reconnect_now_ = false;  // skip the delay after the current stream's loss
  bool stopping_ = false;
  bool finish_queued_ = false;
  int stop_error_ = 0;
  std::uint32_t failures_ = 0;
  std::uint64_t random_;  // xorshift64 state for the jitter
  int refs_ = 1;          // until stopped, plus one per forwarding protocol and pending connect callback
};

}  // namespace async::net
