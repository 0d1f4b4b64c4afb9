package async

/*
#include <async.h>
#include <stdlib.h>
#include <sys/socket.h>
*/
import "C"

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// readLimit is how many received bytes a Conn buffers before it leaves
// the stream paused (its DATA record unanswered) until Read drains them.
const (
	readLimit  = 256 << 10
	writeLimit = 1 << 20
)

// Conn is a libasync stream: an io.ReadWriteCloser and a net.Conn, usable
// from any goroutine (one reader and one writer at a time, as net.Conn).
type Conn struct {
	l      *Loop
	s      *C.async_stream // loop goroutine only; nil once lost
	token  uint64
	local  net.Addr
	remote net.Addr

	mu       sync.Mutex
	rbuf     []byte // received, not read yet: rbuf[rpos:]
	rpos     int
	held     int // bytes of an unanswered DATA record (stream paused)
	eof      bool
	lost     bool
	lostErr  error
	closed   bool // Close was called
	wbuf     []byte
	wspare   []byte
	flushing bool   // a flush is posted
	paused   bool   // the stream's write buffer is above its high-water mark
	reader   waiter // Read's wait
	writer   waiter // Write's wait
	rd, wd   *deadline
	madeHook func()  // dial: connection_made seen
	handler  Handler // handler mode: DATA records go here (loop goroutine)
}

// Handler takes a connection's bytes on the goroutine that drives the
// loop (Loop), with no goroutine switch: it returns how many it consumed
// (the rest comes back in front of the next bytes). data is valid during
// the call only. It must not block; it may call Send and Close. The
// lowest-latency way to serve (ListenHandler).
type Handler func(c *Conn, data []byte) int

func newConn(l *Loop) *Conn {
	c := &Conn{l: l, reader: newWaiter(), writer: newWaiter(), rd: newDeadline(), wd: newDeadline()}
	c.rd.poke, c.wd.poke = l.wakePoll, l.wakePoll
	return c
}

// attach takes the stream of a CONNECTED or ACCEPT record (loop goroutine).
func (c *Conn) attach(s *C.async_stream) {
	c.s = s
	var ss C.struct_sockaddr_storage
	if n := C.async_stream_sockname((*C.struct_sockaddr)(unsafe.Pointer(&ss)), C.size_t(unsafe.Sizeof(ss)), s); n > 0 {
		c.local = goAddr((*C.struct_sockaddr)(unsafe.Pointer(&ss)), C.size_t(n), false)
	}
	if n := C.async_stream_peername((*C.struct_sockaddr)(unsafe.Pointer(&ss)), C.size_t(unsafe.Sizeof(ss)), s); n > 0 {
		c.remote = goAddr((*C.struct_sockaddr)(unsafe.Pointer(&ss)), C.size_t(n), false)
	}
}

func (c *Conn) event(e *C.async_event) {
	switch e.kind {
	case C.ASYNC_EVENT_CONNECTED:
		c.attach((*C.async_stream)(e.object))
		if c.madeHook != nil {
			c.madeHook()
		}
	case C.ASYNC_EVENT_DATA:
		n := int(e.len)
		if c.handler != nil {
			used := c.handler(c, unsafe.Slice((*byte)(unsafe.Pointer(e.data)), n))
			if c.s != nil {
				C.async_stream_consume(c.s, C.size_t(used))
			}
			return
		}
		c.mu.Lock()
		if c.rpos > 0 && c.rpos == len(c.rbuf) {
			c.rbuf, c.rpos = c.rbuf[:0], 0
		}
		c.rbuf = append(c.rbuf, unsafe.Slice((*byte)(unsafe.Pointer(e.data)), n)...)
		full := len(c.rbuf)-c.rpos >= readLimit
		if full {
			c.held = n // answered when Read drains the buffer
		}
		c.reader.wake(c.l)
		c.mu.Unlock()
		if !full {
			C.async_stream_consume(c.s, e.len)
		}
	case C.ASYNC_EVENT_EOF:
		if c.handler != nil { // nobody reads: the end of input ends it
			C.async_stream_close(c.s)
			return
		}
		c.mu.Lock()
		c.eof = true
		c.reader.wake(c.l)
		c.mu.Unlock()
	case C.ASYNC_EVENT_WRITABLE:
		c.mu.Lock()
		c.paused = false
		c.writer.wake(c.l)
		c.mu.Unlock()
	case C.ASYNC_EVENT_LOST:
		c.mu.Lock()
		c.lost = true
		c.lostErr = codeError(e.result)
		c.reader.wake(c.l)
		c.writer.wake(c.l)
		c.mu.Unlock()
		c.s = nil
		c.l.unregister(c.token)
	}
}

func (c *Conn) shutdown() {
	if c.s != nil {
		C.async_stream_abort(c.s)
	}
}

// Read reads what has arrived, waiting for at least one byte; io.EOF at
// the peer's end of file. While it waits and no other goroutine drives the
// loop, it drives it (Loop).
func (c *Conn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		if avail := len(c.rbuf) - c.rpos; avail > 0 {
			n := copy(p, c.rbuf[c.rpos:])
			c.rpos += n
			held := 0
			if c.held > 0 && len(c.rbuf)-c.rpos < readLimit {
				held, c.held = c.held, 0
			}
			c.mu.Unlock()
			if held > 0 {
				c.l.Post(func() {
					if c.s != nil {
						C.async_stream_consume(c.s, C.size_t(held))
					}
				})
			}
			return n, nil
		}
		if c.lost {
			err := c.lostErr
			c.mu.Unlock()
			if err == nil {
				return 0, io.EOF
			}
			return 0, err
		}
		if c.eof {
			c.mu.Unlock()
			return 0, io.EOF
		}
		c.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		if err := c.l.await(&c.mu, &c.reader, c.readable, c.rd); err != nil {
			return 0, err
		}
	}
}

// readable reports whether Read has something to return (under mu).
func (c *Conn) readable() bool {
	return c.closed || c.lost || c.eof || len(c.rbuf) > c.rpos
}

// writable reports whether Write may go on (under mu).
func (c *Conn) writable() bool {
	return c.closed || c.lost || (!c.paused && len(c.wbuf) < writeLimit)
}

// Write queues p for sending and returns; it waits only while more than
// the write limit is queued or the stream's buffer is above its high-water
// mark. A send error ends the connection and shows in later calls.
func (c *Conn) Write(p []byte) (int, error) {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, net.ErrClosed
		case c.lost:
			err := c.lostErr
			c.mu.Unlock()
			if err == nil {
				err = ErrClosed
			}
			return 0, err
		}
		if c.writable() {
			break
		}
		c.mu.Unlock()
		if err := c.l.await(&c.mu, &c.writer, c.writable, c.wd); err != nil {
			return 0, err
		}
	}
	c.wbuf = append(c.wbuf, p...)
	flush := !c.flushing
	c.flushing = true
	c.mu.Unlock()
	if !flush {
		return len(p), nil
	}
	// Hand the bytes to the stream now when nobody drives the loop and
	// nobody waits for it (after what was posted before), else post the
	// flush: with goroutines parked, the driver's batch takes it.
	if atomic.LoadInt32(&c.l.parked) == 0 && c.l.acquire() {
		c.l.runPosted()
		c.flush()
		c.l.release()
		return len(p), nil
	}
	if err := c.l.Post(c.flush); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush hands the queued bytes to the stream (loop goroutine).
func (c *Conn) flush() {
	c.mu.Lock()
	data := c.wbuf
	c.wbuf = c.wspare[:0]
	c.flushing = false
	c.mu.Unlock()
	if c.s != nil && len(data) > 0 {
		C.async_stream_write(c.s, unsafe.Pointer(&data[0]), C.size_t(len(data)))
		var size, high, low C.size_t
		if C.async_stream_write_buffer_size(&size, c.s) == 0 && C.async_stream_get_write_limits(&high, &low, c.s) == 0 && size > high {
			c.mu.Lock()
			c.paused = true
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	c.wspare = data[:0]
	c.writer.wake(c.l) // the buffer was taken
	c.mu.Unlock()
}

// Close flushes what was written and closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.mu.Unlock()
	signal(c.reader.ch)
	signal(c.writer.ch)
	return c.l.Post(func() {
		c.flush()
		if c.s != nil {
			C.async_stream_close(c.s)
		}
	})
}

// CloseWrite sends end of file after what was written (half-close).
func (c *Conn) CloseWrite() error {
	return c.l.Post(func() {
		c.flush()
		if c.s != nil {
			C.async_stream_write_eof(c.s)
		}
	})
}

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
func (c *Conn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// SetNoDelay turns TCP_NODELAY on or off (on by default).
func (c *Conn) SetNoDelay(on bool) error {
	v := C.int(0)
	if on {
		v = 1
	}
	return c.l.call(func() error {
		return c.streamCall(func(s *C.async_stream) C.int { return C.async_stream_set_nodelay(s, v) })
	})
}

// SetKeepAlive turns TCP keepalive on or off, probing after idle.
func (c *Conn) SetKeepAlive(on bool, idle time.Duration) error {
	v := C.int(0)
	if on {
		v = 1
	}
	return c.l.call(func() error {
		return c.streamCall(func(s *C.async_stream) C.int { return C.async_stream_set_keepalive(s, v, C.uint32_t(idle/time.Second)) })
	})
}

func (c *Conn) streamCall(fn func(s *C.async_stream) C.int) error {
	if c.s == nil {
		return ErrClosed
	}
	return codeError(fn(c.s))
}

// Dial connects to address ("host:port" for "tcp", a path for "unix"),
// resolving names inside the loop (Happy Eyeballs), until ctx is done.
func (l *Loop) Dial(ctx context.Context, network, address string) (*Conn, error) {
	c := newConn(l)
	type result struct{ err error }
	done := make(chan result, 1)
	var f *C.async_future
	abandoned := false
	err := l.call(func() error {
		token, binding, err := l.bind(c)
		if err != nil {
			return err
		}
		c.token = token
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
			rc = C.async_tcp_connect(&f, l.c, ch, C.uint16_t(port), nil, C.async_queue_protocol(), binding)
		case "unix":
			cp := C.CString(address)
			defer C.free(unsafe.Pointer(cp))
			rc = C.async_unix_connect(&f, l.c, cp, C.async_queue_protocol(), binding)
		default:
			rc = C.ASYNC_EINVAL
		}
		if rc < 0 {
			l.unbind(c.token, binding)
			return codeError(rc)
		}
		l.watch(f, func(status C.int) {
			C.async_future_free(f)
			f = nil
			if abandoned && status == 0 {
				c.shutdown()
			}
			done <- result{codeError(status)}
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		return c, nil
	case <-ctx.Done():
		l.Post(func() {
			abandoned = true
			if f != nil {
				C.async_future_cancel(f)
			}
		})
		go func() {
			if r := <-done; r.err == nil {
				c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// SetIdleTimeout ends the connection with ErrTimedOut when nothing was
// read or written for d (0: off).
func (c *Conn) SetIdleTimeout(d time.Duration) error {
	return c.l.call(func() error {
		return c.streamCall(func(s *C.async_stream) C.int { return C.async_stream_set_idle_timeout(s, C.uint64_t(ms(d))) })
	})
}

// SetReadLimit bounds the bytes the stream keeps unconsumed (default 1 MiB).
func (c *Conn) SetReadLimit(n int) error {
	return c.l.call(func() error {
		return c.streamCall(func(s *C.async_stream) C.int { return C.async_stream_set_read_limit(s, C.size_t(n)) })
	})
}

// SetWriteLimits sets the stream's write buffer high- and low-water marks.
func (c *Conn) SetWriteLimits(high, low int) error {
	return c.l.call(func() error {
		return c.streamCall(func(s *C.async_stream) C.int {
			return C.async_stream_set_write_limits(s, C.size_t(high), C.size_t(low))
		})
	})
}

// Send writes p at once (its unsent rest is copied by the library). Only
// on the loop's goroutine: inside a Handler or a posted function.
func (c *Conn) Send(p []byte) error {
	if c.s == nil {
		return ErrClosed
	}
	if len(p) == 0 {
		return nil
	}
	return codeError(C.async_stream_write(c.s, unsafe.Pointer(&p[0]), C.size_t(len(p))))
}
