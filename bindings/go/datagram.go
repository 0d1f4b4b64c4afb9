package async

/*
#include <async.h>
#include <stdlib.h>

extern void goDatagramReceived(async_datagram *, uint8_t *, size_t, struct sockaddr *, size_t, void *);
extern void goDatagramError(async_datagram *, int, void *);
extern void goDatagramLost(async_datagram *, int, void *);
extern void goDatagramRelease(void *);

// cgo cannot take the address of an exported Go function as a C function
// pointer of another (const) type: casts here.
static const async_datagram_protocol go_datagram_protocol = {
    sizeof(async_datagram_protocol),
    NULL,
    (void (*)(async_datagram *, const uint8_t *, size_t, const struct sockaddr *, size_t, void *))goDatagramReceived,
    goDatagramError,
    goDatagramLost,
    NULL,
    NULL,
    goDatagramRelease,
};

static int go_udp_open(async_datagram **out, async_loop *loop, const char *local, uintptr_t handle) {
  async_udp_options o = {0};
  o.size = sizeof o;
  o.local_address = local;
  return async_udp_open(out, loop, &o, &go_datagram_protocol, (void *)handle);
}
*/
import "C"

import (
	"net"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

type packet struct {
	data []byte
	from net.Addr
}

// UDPConn is a libasync UDP transport as a net.PacketConn.
type UDPConn struct {
	l     *Loop
	d     *C.async_datagram // loop goroutine only; nil once lost
	token uint64
	local net.Addr

	mu     sync.Mutex
	queue  []packet
	err    error // the last error_received, reported once by ReadFrom
	ended  bool
	closed bool
	reader waiter // ReadFrom's wait
	rd     *deadline
}

const maxQueuedPackets = 1024

// ListenUDP opens a UDP socket bound to address ("127.0.0.1:0", "[::1]:5353").
func (l *Loop) ListenUDP(address string) (*UDPConn, error) {
	u := &UDPConn{l: l, reader: newWaiter(), rd: newDeadline()}
	u.rd.poke = l.wakePoll
	err := l.call(func() error {
		u.token = l.register(u)
		h := cgo.NewHandle(u)
		ca := C.CString(address)
		defer C.free(unsafe.Pointer(ca))
		if rc := C.go_udp_open(&u.d, l.c, ca, C.uintptr_t(h)); rc < 0 {
			h.Delete()
			l.unregister(u.token)
			return codeError(rc)
		}
		var ss C.struct_sockaddr_storage
		if n := C.async_datagram_sockname((*C.struct_sockaddr)(unsafe.Pointer(&ss)), C.size_t(unsafe.Sizeof(ss)), u.d); n > 0 {
			u.local = goAddr((*C.struct_sockaddr)(unsafe.Pointer(&ss)), C.size_t(n), true)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// Datagram callbacks (loop goroutine).
func (u *UDPConn) event(*C.async_event) {}

func (u *UDPConn) received(data []byte, from net.Addr) {
	u.mu.Lock()
	if len(u.queue) < maxQueuedPackets { // beyond: dropped, as a full socket buffer would
		u.queue = append(u.queue, packet{data, from})
	}
	u.reader.wake(u.l)
	u.mu.Unlock()
}

func (u *UDPConn) failed(err error) {
	u.mu.Lock()
	u.err = err
	u.reader.wake(u.l)
	u.mu.Unlock()
}

func (u *UDPConn) lost(err error) {
	u.mu.Lock()
	u.ended = true
	u.reader.wake(u.l)
	u.mu.Unlock()
	u.d = nil
}

func (u *UDPConn) shutdown() {
	if u.d != nil {
		C.async_datagram_abort(u.d)
	}
}

// ReadFrom waits for a datagram.
func (u *UDPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		u.mu.Lock()
		switch {
		case u.closed || u.ended:
			u.mu.Unlock()
			return 0, nil, net.ErrClosed
		case len(u.queue) > 0:
			pk := u.queue[0]
			u.queue = u.queue[1:]
			u.mu.Unlock()
			return copy(p, pk.data), pk.from, nil
		case u.err != nil:
			err := u.err
			u.err = nil
			u.mu.Unlock()
			return 0, nil, err
		}
		u.mu.Unlock()
		if err := u.l.await(&u.mu, &u.reader, u.readable, u.rd); err != nil {
			return 0, nil, err
		}
	}
}

// readable reports whether ReadFrom has something to return (under mu).
func (u *UDPConn) readable() bool {
	return u.closed || u.ended || len(u.queue) > 0 || u.err != nil
}

// WriteTo sends p to addr (a *net.UDPAddr or anything whose String is "ip:port").
func (u *UDPConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	data := append([]byte(nil), p...)
	to := addr.String()
	err := u.l.call(func() error {
		if u.d == nil {
			return net.ErrClosed
		}
		ct := C.CString(to)
		defer C.free(unsafe.Pointer(ct))
		var ptr unsafe.Pointer
		if len(data) > 0 {
			ptr = unsafe.Pointer(&data[0])
		}
		return codeError(C.async_datagram_sendto(u.d, ptr, C.size_t(len(data)), ct))
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the socket (queued sends are flushed first).
func (u *UDPConn) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return net.ErrClosed
	}
	u.closed = true
	u.mu.Unlock()
	signal(u.reader.ch)
	return u.l.Post(func() {
		if u.d != nil {
			C.async_datagram_close(u.d)
		}
	})
}

func (u *UDPConn) LocalAddr() net.Addr                { return u.local }
func (u *UDPConn) SetDeadline(t time.Time) error      { u.rd.set(t); return nil }
func (u *UDPConn) SetReadDeadline(t time.Time) error  { u.rd.set(t); return nil }
func (u *UDPConn) SetWriteDeadline(t time.Time) error { return nil } // sends never block
