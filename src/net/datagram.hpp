// A datagram transport on one socket driven by a protocol (DESIGN §7):
// batched receives (recvmmsg) into the loop's datagram block, sends at once
// with only what the socket refuses queued (flushed with sendmmsg),
// high/low-water flow control in payload bytes, error_received for
// failures that leave it open, connection_made/lost through the ready
// queue.
#pragma once

#include <async/datagram.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "ev/ev_backend.hpp"
#include "net/core_names.hpp"
#include "net/socket.hpp"
#include "net/transport.hpp"
#include "util/fifo.hpp"
#include "util/list.hpp"
#include "util/tagged.hpp"
#include "util/water_marks.hpp"

namespace async::net {

class Datagram : public util::Tagged<0x44475241>, public Transport<Datagram> {  // "DGRA"
 public:
  // 0, or ASYNC_EINVAL/EBADF/ENOMEM with fd and userdata left to the caller.
  static int adopt(Datagram **out, Loop &loop, int fd, const async_datagram_protocol &protocol,
                   void *userdata) noexcept;
  // Copies the caller's protocol into out (util::copy_sized()): true for a
  // protocol async_datagram_adopt() and the open calls accept.
  static bool copy_protocol(async_datagram_protocol &out, const async_datagram_protocol *protocol) noexcept;
  // async_udp_open(): options checked, addresses parsed, the socket opened
  // and adopted; on failure nothing is left open (datagram_open.cpp).
  static int open_udp(Datagram **out, Loop &loop, const async_udp_options &options,
                      const async_datagram_protocol &protocol, void *userdata) noexcept;
  // async_unix_datagram_open(): either path may be NULL.
  static int open_unix(Datagram **out, Loop &loop, const char *local_path, const char *remote_path,
                       const async_datagram_protocol &protocol, void *userdata) noexcept;

  static Datagram *from(async_datagram *d) noexcept { return reinterpret_cast<Datagram *>(d); }
  async_datagram *c_datagram() noexcept { return reinterpret_cast<async_datagram *>(this); }

  int send(const void *data, std::size_t len, const sockaddr *addr, std::size_t addrlen) noexcept;
  // send() to an address given as text (async_datagram_sendto()).
  int sendto(const void *data, std::size_t len, const char *address) noexcept;
  // Options of a UDP transport (the caller checked is_open() and is_inet()).
  int set_multicast_membership(bool join, const char *group, const char *iface) noexcept;
  int set_multicast_interface(const char *iface) noexcept;
  int set_multicast_ttl(int ttl) noexcept;
  int set_multicast_loop(bool on) noexcept;
  int set_broadcast(bool on) noexcept;
  // The socket's own (peer false) or peer's name (socket_name()).
  int socket_name(sockaddr *out, std::size_t capacity, bool peer) const noexcept;
  void pause_reading() noexcept;
  void resume_reading() noexcept;
  bool is_reading() const noexcept;
  std::size_t high() const noexcept { return marks_.high; }
  std::size_t low() const noexcept { return marks_.low; }
  std::size_t write_buffer_size() const noexcept { return queued_; }
  int fd() const noexcept { return fd_; }
  Loop &loop() const noexcept { return *loop_; }
  void *userdata() const noexcept { return userdata_; }
  static Datagram *from_registry_node(util::ListNode *node) noexcept;
  bool is_open() const noexcept { return state_ == State::kOpen; }
  int family() const noexcept { return family_; }
  bool is_inet() const noexcept { return family_ == AF_INET || family_ == AF_INET6; }

  // Use adopt(); public only for util::make/destroy.
  Datagram(Loop &loop, int fd) noexcept;
  ~Datagram();

 private:
  friend class Transport<Datagram>;
  enum class State { kOpen, kClosing, kLost };
  // Transport's access to the state.
  State state() const noexcept { return state_; }
  void set_state(State state) noexcept { state_ = state; }
  void set_made() noexcept { made_ = true; }
  struct Entry;
  // A FIFO of entries: queued sends, errors to report, held receptions.
  struct Queue : util::Fifo<Entry> {
    void clear() noexcept;
  };

  static void on_io(void *self, std::uint32_t revents) noexcept;
  static void on_kick(void *self, std::uint32_t) noexcept;
  static void run_lost(async_loop *, void *self) noexcept;

  // 0 when addr (possibly NULL) is a valid destination, else ASYNC_EINVAL.
  int check_destination(const sockaddr *addr, std::size_t addrlen) const noexcept;
  bool is_peer(const sockaddr *addr, std::size_t addrlen) const noexcept;
  // 1 sent, 0 the socket is full, or a negative ASYNC_E* code.
  int send_now(const void *data, std::size_t len, const sockaddr *addr, socklen_t addrlen) noexcept;
  // The ASYNC_E* code for a failed socket call; fatal ones abort.
  int socket_error(int err) noexcept;
  // An error met inside a user call: reported on a later iteration.
  int defer_error(int error) noexcept;
  // An error met in a loop callback: reported now, after the deferred ones.
  void report(int error) noexcept;
  void flush_errors() noexcept;
  void receive() noexcept;
  void deliver(const Entry &held) noexcept;
  void deliver(const std::uint8_t *data, std::size_t len, const sockaddr_storage &addr, socklen_t addrlen,
               bool truncated) noexcept;
  void hold(const struct mmsghdr *msgs, int count) noexcept;
  void deliver_held() noexcept;
  void send_queued() noexcept;
  void after_drain() noexcept;
  // Transport's hooks.
  static std::uint32_t library_refs() noexcept { return 0; }  // no future holds one
  const async_datagram_protocol &callbacks() const noexcept { return protocol_; }
  static void drop_callbacks() noexcept {}  // its own copy: nothing shared
  async_datagram *c_handle() noexcept { return c_datagram(); }
  bool has_queued() const noexcept { return !out_.empty(); }
  void stop_receiving() noexcept { held_.clear(); }
  void drop_queued() noexcept;
  void after_made() noexcept;
  void schedule_lost(int error) noexcept;
  void update_io() noexcept;
  void kick() noexcept;

  Loop *loop_;  // nullptr once ended (Transport::end())
  // The connection's reference (until it ended) and the callers'.
  std::uint32_t refs_ = 1;
  util::ListNode registry_node_;  // on the loop's registry until connection_lost
  int fd_;
  int family_ = AF_UNSPEC;
  bool connected_ = false;
  SocketAddress peer_;  // when connected_
  State state_ = State::kOpen;
  int lost_error_ = 0;
  async_datagram_protocol protocol_{};
  void *userdata_ = nullptr;
  ev::IoSlot io_;
  ev::TimerSlot kick_;  // delivers deferred errors and held datagrams

  // Receiving.
  bool made_ = false;    // connection_made has run
  bool paused_ = false;  // pause_reading()
  Queue held_;           // received in a batch, waiting for resume_reading()

  // Sending.
  Queue out_;
  Queue errors_;
  std::size_t queued_ = 0;  // payload bytes in out_
  util::WaterMarks marks_;
  bool writing_paused_ = false;  // pause_writing told, resume_writing not yet
};

}  // namespace async::net
