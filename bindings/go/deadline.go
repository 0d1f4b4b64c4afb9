package async

import (
	"sync"
	"time"
)

// deadline is a read or write deadline: a channel closed when it passes
// (the pattern of net.Pipe).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
	when   time.Time // zero: none
	poke   func()    // runs after each change (wakes a goroutine polling until it)
}

func newDeadline() *deadline { return &deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.change(t)
	if d.poke != nil {
		d.poke()
	}
}

func (d *deadline) change(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = t
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer closed it: wait for that to finish
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// timeoutMs is how long a poll may wait for it: -1 without a deadline
// (or for a nil d), 0 once it passed, else the milliseconds left, rounded
// up.
func (d *deadline) timeoutMs() int64 {
	if d == nil {
		return -1
	}
	d.mu.Lock()
	when := d.when
	d.mu.Unlock()
	if when.IsZero() {
		return -1
	}
	left := time.Until(when)
	if left <= 0 {
		return 0
	}
	return int64((left + time.Millisecond - 1) / time.Millisecond)
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// signal wakes one waiter of a capacity-1 channel without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
