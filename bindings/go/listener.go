package async

/*
#include <async.h>
#include <stdlib.h>
#include <sys/socket.h>
*/
import "C"

import (
	"net"
	"sync"
	"unsafe"
)

// Listener is a libasync server as a net.Listener: Accept returns *Conn.
type Listener struct {
	l     *Loop
	srv   *C.async_server // loop goroutine only; nil once closing
	token uint64
	addr  net.Addr

	mu      sync.Mutex
	pending []*Conn
	closed  bool
	ready   chan struct{}
	done    chan struct{}         // closed by Close
	accept  func(c *Conn) Handler // ListenHandler's (loop goroutine)
}

// Listen listens on address: "tcp" with "host:port" (empty host: every
// interface; port 0: a free one), or "unix" with a path.
func (l *Loop) Listen(network, address string) (*Listener, error) {
	return l.listen(network, address, nil)
}

// ListenHandler listens as Listen, but serves on the loop's goroutine:
// accept(c) runs there for each connection and returns its Handler (nil
// closes the connection). Accept is not used.
func (l *Loop) ListenHandler(network, address string, accept func(c *Conn) Handler) (*Listener, error) {
	return l.listen(network, address, accept)
}

func (l *Loop) listen(network, address string, accept func(c *Conn) Handler) (*Listener, error) {
	ln := &Listener{l: l, ready: make(chan struct{}, 1), done: make(chan struct{}), accept: accept}
	err := l.call(func() error {
		token, binding, err := l.bind(ln)
		if err != nil {
			return err
		}
		ln.token = token
		var rc C.int
		switch network {
		case "tcp", "tcp4", "tcp6":
			host, port, err := splitHostPort(address)
			if err != nil {
				rc = C.ASYNC_EINVAL
				break
			}
			ch := cString(host)
			defer C.free(unsafe.Pointer(ch))
			rc = C.async_tcp_listen(&ln.srv, l.c, ch, C.uint16_t(port), 0, 0, C.async_queue_factory(), binding)
		case "unix":
			cp := C.CString(address)
			defer C.free(unsafe.Pointer(cp))
			rc = C.async_unix_listen(&ln.srv, l.c, cp, 0, C.async_queue_factory(), binding)
		default:
			rc = C.ASYNC_EINVAL
		}
		if rc < 0 {
			l.unbind(ln.token, binding)
			return codeError(rc)
		}
		var ss C.struct_sockaddr_storage
		if n := C.async_server_sockname((*C.struct_sockaddr)(unsafe.Pointer(&ss)), C.size_t(unsafe.Sizeof(ss)), ln.srv, 0); n > 0 {
			ln.addr = goAddr((*C.struct_sockaddr)(unsafe.Pointer(&ss)), C.size_t(n), false)
		}
		if ln.addr == nil {
			ln.addr = &net.UnixAddr{Name: address, Net: "unix"}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ln, nil
}

func (ln *Listener) event(e *C.async_event) {
	switch e.kind {
	case C.ASYNC_EVENT_ACCEPT:
		s := (*C.async_stream)(e.object)
		c := newConn(ln.l)
		c.token = ln.l.register(c)
		if C.async_queue_accept(s, C.uint64_t(c.token)) < 0 {
			ln.l.unregister(c.token)
			C.async_stream_abort(s)
			return
		}
		c.attach(s)
		if ln.accept != nil {
			if c.handler = ln.accept(c); c.handler == nil {
				C.async_stream_close(s)
			}
			return
		}
		ln.l.woke = true
		ln.mu.Lock()
		ln.pending = append(ln.pending, c)
		ln.mu.Unlock()
		signal(ln.ready)
	case C.ASYNC_EVENT_CLOSED:
		ln.l.unregister(ln.token)
	}
	// A LOST record with the listener's token is a connection that ended
	// before it was accepted: nothing to do.
}

func (ln *Listener) shutdown() {
	if ln.srv != nil {
		C.async_queue_close(ln.l.q, C.async_server_handle(ln.srv))
		ln.srv = nil
	}
	ln.mu.Lock()
	pending := ln.pending
	ln.pending = nil
	ln.mu.Unlock()
	for _, c := range pending {
		c.shutdown()
	}
}

// Accept waits for the next connection; net.ErrClosed after Close.
func (ln *Listener) Accept() (net.Conn, error) {
	for {
		ln.mu.Lock()
		if ln.closed {
			ln.mu.Unlock()
			return nil, net.ErrClosed
		}
		if len(ln.pending) > 0 {
			c := ln.pending[0]
			ln.pending = ln.pending[1:]
			ln.mu.Unlock()
			return c, nil
		}
		ln.mu.Unlock()
		select {
		case <-ln.ready:
		case <-ln.done:
		}
	}
}

// Close stops listening; connections accepted but not taken are closed.
func (ln *Listener) Close() error {
	ln.mu.Lock()
	if ln.closed {
		ln.mu.Unlock()
		return net.ErrClosed
	}
	ln.closed = true
	ln.mu.Unlock()
	close(ln.done)
	return ln.l.Post(ln.shutdown)
}

// Addr is the address listened on (the first one).
func (ln *Listener) Addr() net.Addr { return ln.addr }

// ConnectionCount is the number of accepted connections still open.
func (ln *Listener) ConnectionCount() (int, error) {
	n := 0
	err := ln.l.call(func() error {
		if ln.srv == nil {
			return ErrClosed
		}
		rc := C.async_server_connection_count(ln.srv)
		n = int(rc)
		return codeError(rc)
	})
	return n, err
}
