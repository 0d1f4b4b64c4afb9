package async

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The hand-over of the poll token (Loop: "Who drives the loop"). Every
// test bounds each wait with a deadline, so that a lost wakeup fails it
// instead of hanging; run them with -race too: two goroutines driving the
// loop at once would touch the holder's fields (objects, events) without
// an order between them.

// untilPolled waits (up to 5 s) until started is set (by a testHook, as a
// goroutine's Read reached await) and the token's holder waits in
// async_queue_poll: that goroutine drives the loop, or parked for the one
// that does. A goroutine started just before may not have run yet.
func untilPolled(t *testing.T, l *Loop, started *int32) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		polled := l.held && l.polling
		l.mu.Unlock()
		if polled && atomic.LoadInt32(started) != 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatal("nobody polled the loop within 5 s")
		}
	}
}

// startLoopWithVacancy is startLoop with Run's standby tick set (before
// Run starts).
func startLoopWithVacancy(t *testing.T, vacancy time.Duration) *Loop {
	t.Helper()
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	l.vacancy = vacancy
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// connPairs makes n connected pairs (client, server) on l.
func connPairs(t *testing.T, l *Loop, n int) (clients, servers []*Conn) {
	t.Helper()
	ln := listenLocal(t, l)
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := l.Dial(ctx, "tcp", ln.Addr().String())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		servers = append(servers, s.(*Conn))
	}
	return clients, servers
}

// netPairs makes n connections from Go's net package to servers on l: a
// peer whose writes do not touch the loop.
func netPairs(t *testing.T, l *Loop, n int) (clients []net.Conn, servers []*Conn) {
	t.Helper()
	ln := listenLocal(t, l)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		servers = append(servers, s.(*Conn))
	}
	return clients, servers
}

// TestDriveNoLostWakeup: many goroutines read, write, post and change
// deadlines at once on connections of one loop whose Run never takes a
// free token on its own (its standby tick is an hour): every record must
// then come from a goroutine that drives the loop or from a kick, so a
// lost wakeup (a goroutine parked while nobody drives, or a post nobody
// runs) stalls a Read past its 10 s deadline and fails the test.
func TestDriveNoLostWakeup(t *testing.T) {
	l := startLoopWithVacancy(t, time.Hour)
	const pairs, rounds = 8, 300
	clients, servers := connPairs(t, l, pairs)
	var wg sync.WaitGroup
	errs := make(chan error, 4*pairs)
	for i := 0; i < pairs; i++ {
		c, s := clients[i], servers[i]
		wg.Add(2)
		go func(i int) { // echo, a byte at a time when i is odd
			defer wg.Done()
			buf := make([]byte, 64)
			if i%2 == 1 {
				buf = buf[:1]
			}
			for {
				s.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, err := s.Read(buf)
				if err == io.EOF {
					s.Close()
					return
				}
				if err != nil {
					errs <- fmt.Errorf("server %d read: %w", i, err)
					return
				}
				if _, err := s.Write(buf[:n]); err != nil {
					errs <- fmt.Errorf("server %d write: %w", i, err)
					return
				}
			}
		}(i)
		go func(i int) {
			defer wg.Done()
			defer c.Close()
			msg := bytes.Repeat([]byte{byte('a' + i)}, 1+i*7)
			back := make([]byte, len(msg))
			for r := 0; r < rounds; r++ {
				if _, err := c.Write(msg); err != nil {
					errs <- fmt.Errorf("client %d write: %w", i, err)
					return
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, back); err != nil || !bytes.Equal(back, msg) {
					errs <- fmt.Errorf("client %d round %d: %v", i, r, err)
					return
				}
			}
			if err := c.CloseWrite(); err != nil {
				errs <- err
				return
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(back); err != io.EOF {
				errs <- fmt.Errorf("client %d at the end: %v", i, err)
			}
		}(i)
	}
	// Posts from elsewhere meanwhile, each waited for with a deadline.
	stop := make(chan struct{})
	posted := make(chan error, 1)
	go func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				posted <- nil
				return
			default:
			}
			ran := make(chan struct{})
			if err := l.Post(func() { close(ran) }); err != nil {
				posted <- err
				return
			}
			select {
			case <-ran:
			case <-time.After(10 * time.Second):
				posted <- fmt.Errorf("post %d did not run", n)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-posted; err != nil {
		t.Error(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDriveHandOffWhenDriverLeaves: two goroutines wait in Read on two
// connections of a loop whose Run takes a free token only when kicked;
// one gets its bytes first and leaves (it reads no more). If it was the
// one driving the loop, the other, parked, must still get its bytes: the
// release of the token must see it parked (or it must have taken the
// token itself). A miss stalls the second Read past its deadline. Many
// rounds, so that both orders and the race between parking and releasing
// come up.
func TestDriveHandOffWhenDriverLeaves(t *testing.T) {
	l := startLoopWithVacancy(t, time.Hour)
	clients, servers := netPairs(t, l, 2)
	read := func(s *Conn, done chan<- error) {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := s.Read(make([]byte, 1))
		done <- err
	}
	for r := 0; r < 500; r++ {
		first, second := make(chan error, 1), make(chan error, 1)
		if r%3 == 0 { // the first one's bytes there before it reads
			clients[0].Write([]byte("a"))
		}
		go read(servers[0], first)
		go read(servers[1], second)
		switch r % 3 {
		case 1: // time to park or drive
			time.Sleep(100 * time.Microsecond)
			fallthrough
		case 2:
			clients[0].Write([]byte("a"))
		}
		if err := <-first; err != nil {
			t.Fatalf("round %d, first: %v", r, err)
		}
		clients[1].Write([]byte("b"))
		if err := <-second; err != nil {
			t.Fatalf("round %d, second (left parked): %v", r, err)
		}
	}
}

// TestDriveParkRacesRelease: the race of the test above, forced. B
// fails to take the token while A drives the loop; before B counts itself
// parked, A gets its bytes and releases the token (seeing nobody parked,
// so kicking nobody, and Run takes a free token only when kicked). B must
// then take the free token itself rather than park with nobody driving.
func TestDriveParkRacesRelease(t *testing.T) {
	l := startLoopWithVacancy(t, time.Hour)
	atHook, proceed := make(chan struct{}), make(chan struct{})
	var hooked, driver *waiter
	var driverAwaits int32
	// Set before any Read starts; notes the driver's wait, stops B's.
	l.testHook = func(w *waiter, at int) {
		if w == driver && at == hookAwait {
			atomic.StoreInt32(&driverAwaits, 1)
		}
		if w == hooked && at == hookPark {
			close(atHook)
			<-proceed
		}
	}
	clients, servers := netPairs(t, l, 2)
	hooked = &servers[1].reader
	readOne := func(s *Conn, done chan<- error) {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := s.Read(make([]byte, 1))
		done <- err
	}
	a, b := make(chan error, 1), make(chan error, 1)
	// Warm up: Run's poll wakes A, so Run stands by (its tick an hour).
	go readOne(servers[0], a)
	time.Sleep(20 * time.Millisecond)
	clients[0].Write([]byte("a"))
	if err := <-a; err != nil {
		t.Fatal(err)
	}
	driver = &servers[0].reader // no Read runs: A's first one returned
	go readOne(servers[0], a)   // A drives the loop now
	untilPolled(t, l, &driverAwaits)
	go readOne(servers[1], b)
	select {
	case <-atHook:
	case <-time.After(5 * time.Second):
		t.Fatal("B did not try to park")
	}
	clients[0].Write([]byte("a"))
	if err := <-a; err != nil { // A released the token
		t.Fatal(err)
	}
	close(proceed)
	time.Sleep(20 * time.Millisecond)
	clients[1].Write([]byte("b"))
	if err := <-b; err != nil {
		t.Fatalf("B, parked while nobody drove: %v", err)
	}
}

// TestDriveNewsBeforeTakingToken: B finds nothing to read; before it
// takes the free token, another driver dispatches B's bytes (B not parked,
// so not woken) and leaves. B, holding the token, must see those bytes
// instead of polling for more that never come.
func TestDriveNewsBeforeTakingToken(t *testing.T) {
	l := startLoopWithVacancy(t, time.Hour)
	atHook, proceed := make(chan struct{}), make(chan struct{})
	var hooked *waiter
	var once sync.Once
	l.testHook = func(w *waiter, at int) {
		if w == hooked && at == hookAwait {
			once.Do(func() {
				close(atHook)
				<-proceed
			})
		}
	}
	clients, servers := netPairs(t, l, 2)
	readOne := func(s *Conn, done chan<- error) {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := s.Read(make([]byte, 1))
		done <- err
	}
	a, b := make(chan error, 1), make(chan error, 1)
	go readOne(servers[0], a) // warm up: Run stands by after waking A
	time.Sleep(20 * time.Millisecond)
	clients[0].Write([]byte("a"))
	if err := <-a; err != nil {
		t.Fatal(err)
	}
	hooked = &servers[1].reader
	go func() { // no deadline: a poll for bytes already there never ends
		_, err := servers[1].Read(make([]byte, 1))
		b <- err
	}()
	select {
	case <-atHook:
	case <-time.After(5 * time.Second):
		t.Fatal("B did not wait")
	}
	go readOne(servers[0], a) // A drives the loop
	time.Sleep(20 * time.Millisecond)
	clients[1].Write([]byte("b")) // dispatched by A, to B not parked
	time.Sleep(20 * time.Millisecond)
	clients[0].Write([]byte("a"))
	if err := <-a; err != nil { // A left: the token is free
		t.Fatal(err)
	}
	close(proceed)
	select {
	case err := <-b:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("B polls for bytes it has")
	}
}

// TestDriveVacancyServesOthers: a goroutine drives the loop in Read, gets
// its bytes and then does not come back; the records nobody waits for in
// Read (a timer's, an accept's, a dial's) and another connection must
// still come, from Run once the token stays free for its tick.
func TestDriveVacancyServesOthers(t *testing.T) {
	l := startLoop(t)
	ln := listenLocal(t, l)
	clients, servers := connPairs(t, l, 1)
	got := make(chan error, 1)
	go func() { // reads once, then goes away (keeps the connection)
		servers[0].SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := servers[0].Read(make([]byte, 16))
		got <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it drive the loop
	clients[0].Write([]byte("x"))
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	within := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not come", what)
		}
	}
	tm, err := l.NewTimer(5*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	fired := make(chan struct{})
	go func() { <-tm.C; close(fired) }()
	t0 := time.Now()
	within("the timer", fired)
	t.Logf("timer after %v", time.Since(t0))

	acceptsWithin(t, ln, within)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := l.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	clients[0].Close()
	servers[0].Close()
}

// TestDriveWritesDoNotHoldOffPolls: Run stands by after waking a reader,
// which then does not come back; another goroutine writes small messages
// in a tight loop to a peer that drains them, each Write taking the free
// token to hand its bytes to the stream without polling. Takings that do
// not poll must not keep Run in standby: a timer's and an accept's records
// must come while the writes go on. Run's tick is 50 ms, so that the
// writer takes the token within every tick even on a loaded machine, and
// nothing is posted once the writes begin (a post would kick Run).
func TestDriveWritesDoNotHoldOffPolls(t *testing.T) {
	const tick = 50 * time.Millisecond
	l := startLoopWithVacancy(t, tick)
	ln := listenLocal(t, l)
	clients, servers := netPairs(t, l, 1)
	go io.Copy(io.Discard, clients[0])
	tm, err := l.NewTimer(6*tick, 0) // fires while the writes go on
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	fired := make(chan struct{})
	go func() { <-tm.C; close(fired) }()
	got := make(chan error, 1)
	go func() { // parks in Read (Run polls), is woken, goes away
		servers[0].SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := servers[0].Read(make([]byte, 16))
		got <- err
	}()
	time.Sleep(tick / 2) // let it park
	clients[0].Write([]byte("x"))
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() { // bounded: ends at stop or after 5 s
		msg := make([]byte, 64)
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
			if _, err := servers[0].Write(msg); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	defer func() {
		close(stop)
		if err := <-wrote; err != nil {
			t.Errorf("Write: %v", err)
		}
		servers[0].Close()
	}()
	within := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(3 * time.Second):
			t.Fatalf("%s did not come while another goroutine writes", what)
		}
	}
	within("the timer", fired)

	acceptsWithin(t, ln, within)
}

// TestReadDeadlineSetWhileDriving: a goroutine waits in Read, driving the
// loop in C with no deadline; a deadline set from another goroutine must
// end that Read (the change wakes the poll).
func TestReadDeadlineSetWhileDriving(t *testing.T) {
	l := startLoop(t)
	clients, servers := connPairs(t, l, 1)
	defer clients[0].Close()
	defer servers[0].Close()
	got := make(chan error, 1)
	go func() {
		_, err := servers[0].Read(make([]byte, 1))
		got <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it drive the loop
	servers[0].SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-got:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline did not end the Read")
	}
}

// TestCloseWhileDriving: Close from another goroutine ends a Read that
// drives the loop, and Run stops while a Read drives it.
func TestCloseWhileDriving(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	clients, servers := connPairs(t, l, 2)
	got := make(chan error, 2)
	for _, s := range servers {
		go func(s *Conn) {
			_, err := s.Read(make([]byte, 1))
			got <- err
		}(s)
	}
	time.Sleep(50 * time.Millisecond)
	servers[0].Close()
	select {
	case err := <-got:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the Read")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop while a Read drove the loop")
	}
	if err := l.Close(); err != nil { // ends the other Read
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the last Read did not end")
	}
	_ = clients
}

// acceptsWithin dials ln with Go's net and checks, with within, that an
// Accept on ln (a listener of a libasync loop) returns.
func acceptsWithin(t *testing.T, ln net.Listener, within func(string, <-chan struct{})) {
	t.Helper()
	accepted := make(chan struct{})
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
		close(accepted)
	}()
	nc, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	within("the accept", accepted)
}
