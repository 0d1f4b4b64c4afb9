// Package async binds libasync (include/async.h) for Go, with Go's standard
// library only. A Loop is driven by one goroutine at a time (Run's, or one
// waiting in Read: Loop); any goroutine uses it through Post, and the
// blocking calls (Dial, Accept, Read, Write, Future.Wait) post their work
// to it or drive it themselves. Events come from libasync's
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
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
//
// Who drives the loop. Every C call on the loop (polls, dispatching records
// to handlers, posted functions, inline writes) is made by the goroutine
// that holds the poll token (held, under mu): one at a time, each hand-over
// through mu, so one call happens before the next (loop.h lets a loop
// change threads while its owner check is off, which it always is here).
// Run takes the token when it is free; so does a goroutine that waits in
// Read, Write or ReadFrom, which then polls the loop itself instead of
// parking (as Go's netpoller lets the waiting goroutine's thread poll):
// its data arrives on its own goroutine, with no hand-off through Go's
// scheduler. The invariants that keep every record coming:
//   - A goroutine parks for records (Conn.Read, Conn.Write past its
//     limits, UDPConn.ReadFrom) only after counting itself in parked and
//     then failing to take the token: the holder of that moment sees the
//     count when it releases (release is under mu), and kicks Run. One
//     that takes the token checks for its news again before it polls
//     (the previous holder may have dispatched them after its check, to
//     it not parked, so not woken).
//   - A function posted while the token is free kicks Run; while the
//     holder waits in C (polling), it is woken with a POST record; else the
//     holder sees it when it releases, and kicks Run. A deadline changed
//     while its goroutine polls wakes the poll (wakePoll; drive reads the
//     deadline after it marks itself polling).
//   - Run waits (standby) only after its poll woke a parked goroutine that
//     may come back to poll, with no other goroutine parked (with several
//     parked, Run's one poll serves them all in a batch, as before), and
//     then only while a holder begins a poll within every vacancyTick.
//     Takings that do not poll (an inline Write, news found at once, an
//     expired deadline) do not count: they dispatch no record. After a
//     whole tick with no poll begun (the goroutine that polled last runs
//     its own code now), Run claims the token (runClaim): acquire refuses
//     it to others, and Run takes it at once if free, else at the
//     holder's release, which kicks it. Records nobody parks for (ACCEPT,
//     TIMER, FUTURE) wait at most two ticks for it. One poll lasting a
//     whole tick (its holder waits in C) sends Run to sleep without a
//     tick (runAsleep); the holder's release kicks it.
//   - Stopping (Run's context done) wakes the holder's poll; no one takes
//     the token after it; Run returns once the token is free.
type Loop struct {
	c      *C.async_loop
	q      *C.async_queue
	events *[batchSize]C.async_event // C memory: poll writes into it

	mu        sync.Mutex // guards the fields down to parked
	posted    []func()
	spare     []func()
	closed    bool
	running   bool   // Run has not returned
	stopping  bool   // Run's context is done: nobody takes the token
	held      bool   // the poll token: its holder alone calls C on the loop
	polls     uint64 // polls begun by holders (Run's standby compares them)
	runClaim  bool   // Run takes the token next: acquire refuses it
	runAsleep bool   // Run waits for a kick only (see above)
	polling   bool   // the holder waits in async_queue_poll
	postSent  bool   // a POST record is on its way for the posted functions
	parked    int32  // goroutines parked for records (atomic; see waiter)
	kick      chan struct{}
	vacancy   time.Duration // Run's standby tick (vacancyTick; tests stretch it)
	// Tests only: runs in await at the points where another goroutine's
	// step can come between two of this one's (hookAwait, hookPark).
	testHook func(w *waiter, at int)

	// The token holder's (Run, a goroutine in Read, or Close after Run).
	objects    map[uint64]handler
	next       uint64
	woke       bool // a dispatched record may have made a goroutine runnable
	wokeWaiter bool // a record woke a parked waiter, which may poll next
}

// Points of await where tests stop a goroutine (Loop.testHook): on entry,
// and between a failed take of the token and parking.
const (
	hookAwait = iota
	hookPark
)

// vacancyTick is how often Run, in standby, checks that goroutines still
// poll the loop (with no poll begun, the token is Run's after one to two
// ticks, or at its holder's release).
const vacancyTick = time.Millisecond

// New makes a loop. Run it (in a goroutine of its own) to use it.
func New() (*Loop, error) {
	l := &Loop{objects: map[uint64]handler{}, next: firstToken, kick: make(chan struct{}, 1), vacancy: vacancyTick}
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

// Post runs fn on the goroutine that drives the loop (Run's, or one
// waiting in Read: Loop), in posting order, from any goroutine. fn must
// not block (it holds up every other object of the loop). ErrClosed once
// the loop is closed.
func (l *Loop) Post(fn func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.posted = append(l.posted, fn)
	if !l.held {
		signal(l.kick) // Run takes the free token and runs them
		return nil
	}
	if !l.polling || l.postSent {
		// The holder sees them when it releases, or with the POST record
		// already sent: no wakeup (no syscall) needed.
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

// Run runs the loop until ctx is done (it returns ctx.Err()). The loop
// waits in C (async_queue_poll) while nothing happens. Run drives the loop
// whenever no goroutine waiting in Read, Write or ReadFrom does (Loop:
// "Who drives the loop"); it is not locked to an OS thread.
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
	l.running, l.stopping = true, false
	l.mu.Unlock()
	stop := make(chan struct{})
	waker := make(chan struct{})
	go func() {
		defer close(waker)
		select {
		case <-ctx.Done():
			l.stop()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-waker // no post may race with Close's free
	}()
	tick := time.NewTicker(l.vacancy)
	tick.Stop()
	defer tick.Stop()
	var err error
	for {
		l.mu.Lock()
		if l.stopping && !l.held {
			l.running, l.runClaim = false, false
			l.mu.Unlock()
			if err != nil {
				return err
			}
			return ctx.Err()
		}
		if l.held || l.stopping {
			l.mu.Unlock()
			l.standby(tick)
			continue
		}
		l.held, l.runClaim = true, false
		l.mu.Unlock()
		l.woke, l.wokeWaiter = false, false // left by other holders
		err = l.drive(nil)
		woke, wokeWaiter := l.woke, l.wokeWaiter
		l.woke, l.wokeWaiter = false, false
		l.release()
		if err != nil {
			l.stop()
			continue
		}
		// The records made goroutines runnable, on this thread's P: let
		// them run now, on this thread. Blocked in C, the P would only be
		// handed on once sysmon retakes it. Not after records that only
		// ran Handlers.
		if woke {
			runtime.Gosched()
		}
		// A waiter it woke may come back and poll itself: stand by, unless
		// others wait (then one poll serves them all in a batch).
		if wokeWaiter && atomic.LoadInt32(&l.parked) == 0 {
			l.standby(tick)
		}
	}
}

// stop ends Run: nobody takes the token any more, its holder's poll is
// woken, and Run is kicked to return once the token is free.
func (l *Loop) stop() {
	l.mu.Lock()
	l.stopping = true
	if l.polling {
		C.async_queue_post(l.q, tokenWake)
	}
	l.mu.Unlock()
	signal(l.kick)
}

// standby waits until Run should take the token: a kick (see release and
// Post), stopping, or a whole tick with no poll begun.
func (l *Loop) standby(tick *time.Ticker) {
	l.mu.Lock()
	seen := l.polls
	l.mu.Unlock()
	tick.Reset(l.vacancy)
	ticking := true
	for {
		var ticks <-chan time.Time
		if ticking {
			ticks = tick.C
		}
		ticked := false
		select {
		case <-l.kick:
		case <-ticks:
			ticked = true
		}
		l.mu.Lock()
		idle := ticked && l.polls == seen // no poll begun for a whole tick
		if idle && !l.polling {
			// Nobody polls: the token is free or its holder does not
			// poll (an inline Write may take it again and again).
			l.runClaim = true
		}
		switch {
		case !l.held && (l.stopping || l.runClaim || len(l.posted) > 0 || atomic.LoadInt32(&l.parked) > 0):
			l.mu.Unlock()
			tick.Stop()
			return
		case idle:
			// Claimed, or one poll for the whole tick (its holder waits
			// in C): the holder's release kicks.
			l.runAsleep = !l.runClaim
			ticking = false
			tick.Stop()
		case !ticking && !l.runClaim:
			ticking = true
			tick.Reset(l.vacancy)
		}
		seen = l.polls
		l.mu.Unlock()
	}
}

// acquire takes the poll token if it is free and Run runs.
func (l *Loop) acquire() bool {
	l.mu.Lock()
	ok := l.running && !l.stopping && !l.held && !l.runClaim
	if ok {
		l.held = true
	}
	l.mu.Unlock()
	return ok
}

// release gives the token back and kicks Run when the free token must be
// taken now (something posted, a goroutine parked, stopping, Run claims
// it) or Run sleeps without its tick.
func (l *Loop) release() {
	l.mu.Lock()
	l.held = false
	if l.stopping || l.runClaim || l.runAsleep || len(l.posted) > 0 || atomic.LoadInt32(&l.parked) > 0 {
		l.runAsleep = false
		signal(l.kick)
	}
	l.mu.Unlock()
}

// drive runs what was posted, then waits for records until dl (nil: however
// long) and dispatches them (token holder).
func (l *Loop) drive(dl *deadline) error {
	l.mu.Lock()
	pending := len(l.posted) > 0
	l.polling = !pending && !l.stopping
	wait := l.polling
	l.polls++ // a poll begins: Run's standby keeps waiting
	l.mu.Unlock()
	timeout := int64(0)
	if wait {
		// Read after polling is set: a deadline changed from here on
		// wakes the poll (wakePoll), one changed before is seen here.
		timeout = dl.timeoutMs()
	}
	if pending {
		l.runPosted()
	}
	_, err := l.pollOnce(timeout)
	l.mu.Lock()
	l.polling = false
	l.mu.Unlock()
	return err
}

// wakePoll makes a holder waiting in C return (a deadline changed).
func (l *Loop) wakePoll() {
	l.mu.Lock()
	if l.polling {
		C.async_queue_post(l.q, tokenWake)
	}
	l.mu.Unlock()
}

// waiter is one goroutine's wait for an object's records (a Conn's reader
// or writer, a UDPConn's reader).
type waiter struct {
	ch     chan struct{} // capacity 1: signalled when the record came
	parked bool          // under the object's mutex: counted in Loop.parked
}

func newWaiter() waiter { return waiter{ch: make(chan struct{}, 1)} }

// wake tells a parked waiter that its record came (token holder, under the
// object's mutex).
func (w *waiter) wake(l *Loop) {
	if w.parked {
		w.parked = false
		atomic.AddInt32(&l.parked, -1)
		l.woke, l.wokeWaiter = true, true
		signal(w.ch)
	}
}

// await waits for w's object to have news: while nobody drives the loop,
// the caller drives it for one poll (up to dl); else it parks until the
// holder wakes it. news reports, under mu, whether there is news already.
// The caller checks again after each return.
func (l *Loop) await(mu *sync.Mutex, w *waiter, news func() bool, dl *deadline) error {
	if l.testHook != nil {
		l.testHook(w, hookAwait)
	}
	// Once the token is taken, nobody else dispatches: check for news a
	// holder of before dispatched after the caller's check, to this
	// goroutine not parked (so not woken).
	drive := func() error {
		mu.Lock()
		ready := news()
		mu.Unlock()
		if ready {
			l.release()
			return nil
		}
		return l.driveUntil(dl)
	}
	// With others parked, the driver's next batch serves this one too.
	if atomic.LoadInt32(&l.parked) == 0 && l.acquire() {
		return drive()
	}
	if l.testHook != nil {
		l.testHook(w, hookPark)
	}
	mu.Lock()
	if news() {
		mu.Unlock()
		return nil
	}
	w.parked = true
	atomic.AddInt32(&l.parked, 1)
	mu.Unlock()
	unpark := func() {
		mu.Lock()
		if w.parked {
			w.parked = false
			atomic.AddInt32(&l.parked, -1)
		}
		mu.Unlock()
	}
	// Counted first, tried again: a holder that released in between saw
	// the count (and kicked Run), or the token is free now.
	if l.acquire() {
		unpark()
		return drive()
	}
	select {
	case <-w.ch:
	case <-dl.wait():
		unpark()
		return os.ErrDeadlineExceeded
	}
	unpark() // a signal from Close or a stale one: not counted any more
	return nil
}

// driveUntil drives the loop (token taken) for one poll, up to dl.
func (l *Loop) driveUntil(dl *deadline) error {
	if dl.timeoutMs() == 0 {
		l.release()
		return os.ErrDeadlineExceeded
	}
	err := l.drive(dl)
	l.release()
	return err
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

// bind gives h a token and a binding of the queue that routes an object's
// records to it (token holder). Hand the binding to the call that makes
// the object; if that call fails, unbind.
func (l *Loop) bind(h handler) (uint64, unsafe.Pointer, error) {
	token := l.register(h)
	var binding unsafe.Pointer
	if rc := C.async_queue_bind(&binding, l.q, C.uint64_t(token)); rc < 0 {
		l.unregister(token)
		return 0, nil, codeError(rc)
	}
	return token, binding, nil
}

// unbind frees a binding no object took, and its token.
func (l *Loop) unbind(token uint64, binding unsafe.Pointer) {
	C.async_queue_unbind(l.q, binding)
	l.unregister(token)
}

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
