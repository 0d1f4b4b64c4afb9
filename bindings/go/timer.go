package async

/*
#include <async.h>
*/
import "C"

import "time"

// Timer is a libasync timer: each expiry sends the time on C (dropped if
// the last one was not received, as time.Ticker does).
type Timer struct {
	C     <-chan time.Time
	c     chan time.Time
	l     *Loop
	t     *C.async_timer // loop goroutine only; nil once closing
	token uint64
}

func ms(d time.Duration) C.uint64_t {
	if d <= 0 {
		return 0
	}
	return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond)
}

// NewTimer starts a timer expiring after d, then every repeat (0: once).
// Close it when done.
func (l *Loop) NewTimer(d, repeat time.Duration) (*Timer, error) {
	c := make(chan time.Time, 1)
	t := &Timer{C: c, c: c, l: l}
	err := l.call(func() error {
		token, binding, err := l.bind(t)
		if err != nil {
			return err
		}
		t.token = token
		if rc := C.async_timer_new(&t.t, l.c, binding); rc < 0 {
			l.unbind(t.token, binding)
			return codeError(rc)
		}
		if rc := C.async_queue_timer_start(l.q, t.t, ms(d), ms(repeat)); rc < 0 {
			C.async_queue_close(l.q, C.async_timer_handle(t.t)) // its CLOSED record unregisters it
			t.t = nil
			return codeError(rc)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Timer) event(e *C.async_event) {
	switch e.kind {
	case C.ASYNC_EVENT_TIMER:
		t.l.woke = true
		select {
		case t.c <- time.Now():
		default:
		}
	case C.ASYNC_EVENT_CLOSED:
		t.l.unregister(t.token)
	}
}

func (t *Timer) shutdown() {
	if t.t != nil {
		C.async_queue_close(t.l.q, C.async_timer_handle(t.t))
		t.t = nil
	}
}

// Reset restarts the timer: first expiry after d, then every repeat.
func (t *Timer) Reset(d, repeat time.Duration) error {
	return t.l.call(func() error {
		if t.t == nil {
			return ErrClosed
		}
		return codeError(C.async_queue_timer_start(t.l.q, t.t, ms(d), ms(repeat)))
	})
}

// Stop stops the timer (Reset starts it again).
func (t *Timer) Stop() error {
	return t.l.call(func() error {
		if t.t == nil {
			return ErrClosed
		}
		return codeError(C.async_timer_stop(t.t))
	})
}

// Close stops the timer for good.
func (t *Timer) Close() error { return t.l.Post(t.shutdown) }
