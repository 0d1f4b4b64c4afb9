package async

/*
#include <async.h>
*/
import "C"

import (
	"os"
	ossignal "os/signal"
	"sync"
)

// Signal delivers process signals to the loop: fn runs on the loop's
// goroutine, in arrival order, like any posted function.
//
// It is built on os/signal.Notify, not on libasync's async_signal: libev
// installs its handlers without SA_ONSTACK, which the Go runtime requires
// of every handler installed by non-Go code for a signal Go may receive.
// Signals that arrive while the previous ones are still being posted may
// be coalesced, as os/signal does for a full channel.
type Signal struct {
	l    *Loop
	fn   func(os.Signal)
	ch   chan os.Signal
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	stopped bool
	token   uint64 // loop goroutine: its entry in the loop's objects
}

// OnSignal starts delivering sig (all signals if none, as signal.Notify)
// to fn on the loop's goroutine, until Stop or the loop's Close.
func (l *Loop) OnSignal(fn func(os.Signal), sig ...os.Signal) (*Signal, error) {
	s := &Signal{l: l, fn: fn, ch: make(chan os.Signal, 16), quit: make(chan struct{}), done: make(chan struct{})}
	if err := l.call(func() error {
		s.token = l.register(s)
		return nil
	}); err != nil {
		return nil, err
	}
	ossignal.Notify(s.ch, sig...)
	go s.forward()
	return s, nil
}

// forward posts each arrival to the loop until Stop.
func (s *Signal) forward() {
	defer close(s.done)
	for {
		select {
		case v := <-s.ch:
			if s.l.Post(func() { s.deliver(v) }) != nil {
				return // the loop is closed
			}
		case <-s.quit:
			return
		}
	}
}

// deliver runs fn unless Stop came first (loop goroutine).
func (s *Signal) deliver(v os.Signal) {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if !stopped {
		s.fn(v)
	}
}

// Stop ends the delivery: once it returns, fn is not called again (but
// for a call running at that moment on the loop's goroutine). The signals
// go back to what other os/signal users or the defaults make of them.
// Safe from any goroutine, more than once; ErrClosed after the first.
func (s *Signal) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrClosed
	}
	s.stopped = true
	s.mu.Unlock()
	ossignal.Stop(s.ch)
	close(s.quit)
	<-s.done
	// Out of the loop's table (a closed loop has dropped it already).
	s.l.Post(func() { s.l.unregister(s.token) })
	return nil
}

// The loop's side: Signal has no records; Close stops it.
func (s *Signal) event(*C.async_event) {}

func (s *Signal) shutdown() {
	s.l.unregister(s.token)
	s.mu.Lock()
	stopped := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if !stopped {
		ossignal.Stop(s.ch)
		close(s.quit)
		<-s.done
	}
}
