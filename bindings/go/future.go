package async

/*
#include <async.h>
#include <stdlib.h>
#include <sys/socket.h>
*/
import "C"

import (
	"context"
	"net"
	"time"
	"unsafe"
)

// futureWatch runs done(status) on the loop when a C future is done: the
// FUTURE record of async_queue_watch.
type futureWatch struct {
	l     *Loop
	f     *C.async_future
	token uint64
	done  func(status C.int)
}

// shutdown (Loop.Close) cancels the future: its record follows with
// ErrCanceled.
func (w *futureWatch) shutdown() { C.async_future_cancel(w.f) }

func (w *futureWatch) event(e *C.async_event) {
	w.l.unregister(w.token)
	w.l.woke = true
	w.done(C.int(e.result))
}

// watch asks for f's FUTURE record (loop goroutine). A watch that cannot
// be made reports its error through done, from the loop.
func (l *Loop) watch(f *C.async_future, done func(status C.int)) {
	w := &futureWatch{l: l, f: f, done: done}
	w.token = l.register(w)
	if rc := C.async_queue_watch(l.q, f, C.uint64_t(w.token)); rc < 0 {
		l.unregister(w.token)
		C.async_future_cancel(f)
		l.Post(func() { done(rc) })
	}
}

// Future is a result that comes later, from the loop: read it with Wait
// or select on Done.
type Future[T any] struct {
	done  chan struct{}
	value T
	err   error
}

func newFuture[T any]() *Future[T] { return &Future[T]{done: make(chan struct{})} }

func (f *Future[T]) complete(value T, err error) {
	f.value, f.err = value, err
	close(f.done)
}

// Done is closed when the result is there.
func (f *Future[T]) Done() <-chan struct{} { return f.done }

// Wait waits for the result, or for ctx (ctx.Err(); the operation goes on).
func (f *Future[T]) Wait(ctx context.Context) (T, error) {
	select {
	case <-f.done:
		return f.value, f.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// LookupHost resolves host (a name, "localhost" or a literal) to its
// addresses inside the loop (c-ares, the loop's DNS settings).
func (l *Loop) LookupHost(host string) *Future[[]net.IP] {
	fut := newFuture[[]net.IP]()
	err := l.Post(func() {
		var f *C.async_future
		ch := C.CString(host)
		defer C.free(unsafe.Pointer(ch))
		if rc := C.async_getaddrinfo(&f, l.c, ch, nil, C.AF_UNSPEC, C.SOCK_STREAM, 0); rc < 0 {
			fut.complete(nil, codeError(rc))
			return
		}
		l.watch(f, func(status C.int) {
			defer C.async_future_free(f)
			if status < 0 {
				fut.complete(nil, codeError(status))
				return
			}
			var list *C.async_addrinfo
			if rc := C.async_addrinfo_take(&list, f); rc < 0 {
				fut.complete(nil, codeError(rc))
				return
			}
			defer C.async_addrinfo_free(list)
			var ips []net.IP
			for i := 0; i < int(C.async_addrinfo_count(list)); i++ {
				var sa *C.struct_sockaddr
				n := C.async_addrinfo_addr(&sa, list, C.size_t(i))
				if a, ok := goAddr(sa, C.size_t(n), false).(*net.TCPAddr); ok && n > 0 {
					ips = append(ips, a.IP)
				}
			}
			fut.complete(ips, nil)
		})
	})
	if err != nil {
		fut.complete(nil, err)
	}
	return fut
}

// SetDNSServers sets the loop's DNS servers ("127.0.0.1:5353,[::1]:53").
func (l *Loop) SetDNSServers(servers string) error {
	return l.call(func() error {
		cs := C.CString(servers)
		defer C.free(unsafe.Pointer(cs))
		return codeError(C.async_dns_set_servers(l.c, cs))
	})
}

// SetHostsFile sets the hosts file the loop's resolver reads.
func (l *Loop) SetHostsFile(path string) error {
	return l.call(func() error {
		cp := C.CString(path)
		defer C.free(unsafe.Pointer(cp))
		return codeError(C.async_dns_set_hosts_file(l.c, cp))
	})
}

// SetDNSTimeout sets the per-query timeout and the tries per server.
func (l *Loop) SetDNSTimeout(timeout time.Duration, tries int) error {
	return l.call(func() error {
		return codeError(C.async_dns_set_timeout(l.c, C.uint32_t(ms(timeout)), C.uint32_t(tries)))
	})
}

// Version is the libasync version loaded ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.async_version_string()) }
