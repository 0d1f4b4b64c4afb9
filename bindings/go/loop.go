// Package async binds libasync (include/async.h) for Go, with Go's standard
// library only. A Loop runs on one locked OS thread (Run); any goroutine
// uses it through Post, and the blocking calls (Dial, Accept, Read, Write,
// Future.Wait) post their work to it. Events come from libasync's
// completion queue (async/queue.h) in batches: one cgo call per batch,
// integer tokens instead of callbacks, no cgo.Handle per event.
package async

/*
#cgo pkg-config: libasync
#include <async.h>
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"unsafe"
)

// Tokens the loop keeps for itself; objects get tokens from firstToken on.
const (
	tokenPost  = 1 // the posted functions are waiting
	tokenWake  = 2 // Run's context is done
	firstToken = 16
	batchSize  = 256
)

// handler receives the records of one token, on the loop's goroutine.
type handler interface {
	event(e *C.async_event)
}

// Loop is a libasync loop with its completion queue.
type Loop struct {
	c      *C.async_loop
	q      *C.async_queue
	events *[batchSize]C.async_event // C memory: poll writes into it

	mu       sync.Mutex // guards posted, closed, running, polling, postSent
	posted   []func()
	spare    []func()
	closed   bool
	running  bool
	polling  bool // the loop's goroutine waits in async_queue_poll
	postSent bool // a POST record is on its way for the posted functions

	// The loop goroutine's own (Run or Close).
	objects map[uint64]handler
	next    uint64
	woke    bool // a dispatched record may have made a goroutine runnable
}

// New makes a loop. Run it (in a goroutine of its own) to use it.
func New() (*Loop, error) {
	l := &Loop{objects: map[uint64]handler{}, next: firstToken}
	if rc := C.async_loop_new(&l.c); rc < 0 {
		return nil, codeError(rc)
	}
	if rc := C.async_queue_new(&l.q, l.c); rc < 0 {
		C.async_loop_free(l.c)
		return nil, codeError(rc)
	}
	l.events = (*[batchSize]C.async_event)(C.calloc(batchSize, C.size_t(unsafe.Sizeof(C.async_event{}))))
	if l.events == nil {
		C.async_queue_free(l.q)
		C.async_loop_free(l.c)
		return nil, ErrNoMemory
	}
	return l, nil
}

// Post runs fn on the loop's goroutine, in posting order, from any
// goroutine. fn must not block (it holds up every other object of the
// loop). ErrClosed once the loop is closed.
func (l *Loop) Post(fn func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.posted = append(l.posted, fn)
	if !l.polling || l.postSent {
		// The loop takes them all before it waits again, or with the
		// POST record already sent: no wakeup (no syscall) needed.
		return nil
	}
	l.postSent = true
	// Under mu: Close cannot free the queue meanwhile.
	return codeError(C.async_queue_post(l.q, tokenPost))
}

// call runs fn on the loop and waits for its result.
func (l *Loop) call(fn func() error) error {
	done := make(chan error, 1)
	if err := l.Post(func() { done <- fn() }); err != nil {
		return err
	}
	return <-done
}

// Run runs the loop on the calling goroutine until ctx is done (it
// returns ctx.Err()). The loop waits in C (async_queue_poll) while nothing
// happens. Every C call on the loop is made by this goroutine (or by
// Close, after Run), one at a time; the goroutine is not locked to its OS
// thread (loop.h lets a loop change threads with the owner check off), so
// a goroutine it wakes runs on the same thread, without a thread switch.
func (l *Loop) Run(ctx context.Context) error {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	case l.running:
		l.mu.Unlock()
		return ErrBusy
	}
	l.running = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.running = false
		l.mu.Unlock()
	}()
	stop := make(chan struct{})
	waker := make(chan struct{})
	go func() {
		defer close(waker)
		select {
		case <-ctx.Done():
			C.async_queue_post(l.q, tokenWake)
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-waker // no post may race with Close's free
	}()
	for ctx.Err() == nil {
		// Functions posted while the loop was not waiting sent no record:
		// run them, then poll without waiting.
		l.mu.Lock()
		pending := len(l.posted) > 0
		l.polling = !pending
		l.mu.Unlock()
		timeout := int64(-1)
		if pending {
			l.runPosted()
			timeout = 0
		}
		_, err := l.pollOnce(timeout)
		l.mu.Lock()
		l.polling = false
		l.mu.Unlock()
		if err != nil {
			return err
		}
		// The records made goroutines runnable, on this thread's P: let
		// them run now, on this thread (their replies are posted without
		// a wakeup while the loop is not waiting). Blocked in C, the P
		// would only be handed on once sysmon retakes it (up to
		// milliseconds later). Not after records that only ran Handlers.
		if l.woke {
			l.woke = false
			runtime.Gosched()
		}
	}
	return ctx.Err()
}

// pollOnce waits up to timeoutMs for records and dispatches them.
func (l *Loop) pollOnce(timeoutMs int64) (int, error) {
	n := C.async_queue_poll(&l.events[0], batchSize, l.q, C.int64_t(timeoutMs))
	if n < 0 {
		return 0, codeError(n)
	}
	for i := 0; i < int(n); i++ {
		e := &l.events[i]
		switch e.token {
		case tokenPost:
			l.runPosted()
		case tokenWake:
		default:
			if h := l.objects[uint64(e.token)]; h != nil {
				h.event(e)
			}
		}
	}
	return int(n), nil
}

func (l *Loop) runPosted() {
	l.mu.Lock()
	fns := l.posted
	l.posted = l.spare[:0]
	l.postSent = false
	l.mu.Unlock()
	for i, fn := range fns {
		fn()
		fns[i] = nil
	}
	l.woke = l.woke || len(fns) > 0
	l.mu.Lock()
	l.spare = fns[:0]
	l.mu.Unlock()
}

// register gives h a token (loop goroutine).
func (l *Loop) register(h handler) uint64 {
	t := l.next
	l.next++
	l.objects[t] = h
	return t
}

func (l *Loop) unregister(token uint64) { delete(l.objects, token) }

// closer is a handler that Close can end (its final record follows).
type closer interface {
	handler
	shutdown()
}

// Close ends every object still open, waits for their final records and
// frees the loop. Call it once Run has returned. Posts made after it
// return ErrClosed; functions still posted run first.
func (l *Loop) Close() error {
	l.mu.Lock()
	if l.closed || l.running {
		l.mu.Unlock()
		if l.running {
			return ErrBusy
		}
		return ErrClosed
	}
	l.mu.Unlock()
	l.runPosted()
	for _, h := range l.objects {
		if c, ok := h.(closer); ok {
			c.shutdown()
		}
	}
	// Final records come from the loop: bounded, as every object is ending.
	for i := 0; len(l.objects) > 0 && i < 1000; i++ {
		if _, err := l.pollOnce(10); err != nil {
			return err
		}
		l.runPosted()
	}
	l.mu.Lock()
	l.closed = true
	l.posted = nil
	l.mu.Unlock()
	if rc := C.async_queue_free(l.q); rc < 0 {
		return codeError(rc)
	}
	C.async_loop_run(l.c, C.ASYNC_RUN_NOWAIT)
	C.free(unsafe.Pointer(l.events))
	return codeError(C.async_loop_free(l.c))
}
