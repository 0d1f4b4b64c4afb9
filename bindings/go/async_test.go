package async

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	ossignal "os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startLoop runs a new loop in a goroutine; the cleanup stops and closes it.
// listenLocal listens on a free TCP port of 127.0.0.1 and closes the
// listener when the test ends.
func listenLocal(t testing.TB, l *Loop) *Listener {
	t.Helper()
	ln, err := l.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func startLoop(t testing.TB) *Loop {
	t.Helper()
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func TestPostRunsInOrder(t *testing.T) {
	l := startLoop(t)
	got := make(chan int, 100)
	for i := 0; i < 100; i++ {
		i := i
		if err := l.Post(func() { got <- i }); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		if v := <-got; v != i {
			t.Fatalf("post %d ran as %d", i, v)
		}
	}
}

func TestErrorsAreValues(t *testing.T) {
	for code := -1; code >= -1000; code-- {
		if knownCode(code) && errorsByCode[code] == nil {
			t.Errorf("code %d (%s) has no exported value", code, errorOf(code).(*Error).Name)
		}
	}
	for _, e := range allErrors {
		if got := errorOf(e.Code); !errors.Is(got, e) {
			t.Errorf("%s: errors.Is fails", e.Name)
		}
		if e.Error() == "" || e.Name == "" {
			t.Errorf("code %d has no text", e.Code)
		}
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", ErrTimedOut), ErrTimedOut) || !ErrTimedOut.Timeout() {
		t.Fatal("wrapped ErrTimedOut")
	}
	if errorOf(0) != nil {
		t.Fatal("0 is not an error")
	}
	if e, ok := errorOf(-1000).(*Error); !ok || e.Code != -1000 {
		t.Fatal("unknown code")
	}
}

func TestTimerFiresAndRepeats(t *testing.T) {
	l := startLoop(t)
	start := time.Now()
	tm, err := l.NewTimer(20*time.Millisecond, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	<-tm.C
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("fired early: %v", el)
	}
	for i := 0; i < 3; i++ {
		<-tm.C
	}
	if err := tm.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := tm.Reset(5*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tm.C:
	case <-time.After(5 * time.Second):
		t.Fatal("reset timer did not fire")
	}
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := l.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Post(func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("post after close: %v", err)
	}
}

func TestLookupLocalhost(t *testing.T) {
	l := startLoop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := l.LookupHost("localhost").Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ip := range ips {
		found = found || ip.IsLoopback()
	}
	if !found {
		t.Fatalf("localhost: %v", ips)
	}
	_, err = l.LookupHost("bad..name").Wait(ctx)
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("bad name: %v", err)
	}
}

// echoServer accepts on ln and echoes with io.Copy until the listener closes.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

func TestDialListenEcho(t *testing.T) {
	l := startLoop(t)
	ln := listenLocal(t, l)
	go echoServer(ln)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := l.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteAddr().String() != ln.Addr().String() {
		t.Fatalf("remote %v, listener %v", c.RemoteAddr(), ln.Addr())
	}
	r := bufio.NewReader(c)
	for i := 0; i < 100; i++ {
		line := fmt.Sprintf("line %d\n", i)
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	// A large transfer: flow control both ways.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	go c.Write(big)
	back := make([]byte, len(big))
	if _, err := io.ReadFull(r, back); err != nil || !bytes.Equal(back, big) {
		t.Fatalf("big echo: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after half-close: %v", err)
	}
	c.Close()
	if _, err := c.Read(back); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestDialRefused(t *testing.T) {
	l := startLoop(t)
	ln, err := l.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.Dial(ctx, "tcp", addr); !errors.Is(err, ErrConnRefused) {
		t.Fatalf("dial: %v", err)
	}
	if _, err := l.Dial(ctx, "tcp", "no port"); err == nil {
		t.Fatal("bad address accepted")
	}
	if _, err := l.Listen("tcp", addr+"0"); err == nil {
		t.Fatal("bad port accepted")
	}
}

func TestReadDeadline(t *testing.T) {
	l := startLoop(t)
	ln := listenLocal(t, l)
	c, err := net.Dial("tcp", ln.Addr().String()) // Go's own client
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var ne net.Error
	if _, err := s.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read: %v", err)
	}
	s.SetReadDeadline(time.Time{})
	c.Write([]byte("x"))
	if n, err := s.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read after deadline cleared: %d %v", n, err)
	}
}

func TestHTTPServeOverListener(t *testing.T) {
	l := startLoop(t)
	ln, err := l.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(body))
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	// net/http's own client (Go's net), keep-alive over several requests.
	for i := 0; i < 5; i++ {
		resp, err := http.Post(url+"/p"+strconv.Itoa(i), "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "POST /p" + strconv.Itoa(i) + " 5"; string(body) != want {
			t.Fatalf("got %q want %q", body, want)
		}
	}
	// A client dialing through the loop too.
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return l.Dial(ctx, network, addr)
	}}
	client := &http.Client{Transport: tr}
	resp, err := client.Get(url + "/loop")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "GET /loop 0" {
		t.Fatalf("got %q", body)
	}
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
}

func TestUDPPingPong(t *testing.T) {
	l := startLoop(t)
	a, err := l.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var _ net.PacketConn = a
	for i := 0; i < 10; i++ {
		msg := []byte("ping " + strconv.Itoa(i))
		if _, err := a.WriteTo(msg, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := b.ReadFrom(buf)
		if err != nil || string(buf[:n]) != string(msg) || from.String() != a.LocalAddr().String() {
			t.Fatalf("got %q from %v: %v", buf[:n], from, err)
		}
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, _, err := b.ReadFrom(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	a.Close()
	b.Close()
	if _, _, err := a.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestConnOptionsAndVersion(t *testing.T) {
	if Version() == "" {
		t.Fatal("no version")
	}
	l := startLoop(t)
	if err := l.SetDNSTimeout(time.Second, 2); err != nil {
		t.Fatal(err)
	}
	ln := listenLocal(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := l.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ln.ConnectionCount(); n != 1 || err != nil {
		t.Fatalf("connections: %d %v", n, err)
	}
	for _, err := range []error{c.SetNoDelay(true), c.SetKeepAlive(true, 30*time.Second), c.SetReadLimit(4096), c.SetWriteLimits(1024, 256)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetWriteLimits(1, 2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("low above high: %v", err)
	}
	// The idle timeout ends the idle connection with ErrTimedOut.
	if err := s.(*Conn).SetIdleTimeout(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, ErrTimedOut) {
		t.Fatalf("idle: %v", err)
	}
	c.Close()
	s.Close()
}

// Close ends what the program left open: each object's final record comes
// and the loop is freed.
func TestCloseEndsOpenObjects(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	ln, err := l.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	c, err := l.Dial(dctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("unread"))
	if _, err := l.NewTimer(time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ListenUDP("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	f := l.LookupHost("localhost")
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-f.Done():
	default:
		// The lookup was still posted when Run stopped: Close ran it and
		// cancelled it, so it is done.
		t.Fatal("lookup not completed by Close")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on a conn of a closed loop")
	}
}

func TestListenHandlerEchoesOnTheLoop(t *testing.T) {
	l := startLoop(t)
	ln, err := l.ListenHandler("tcp", "127.0.0.1:0", func(c *Conn) Handler {
		return func(c *Conn, data []byte) int {
			// Lines only: a partial line stays for the next call.
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				return 0
			}
			if err := c.Send(data[:i+1]); err != nil {
				t.Error(err)
			}
			return i + 1
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("par"))
	time.Sleep(10 * time.Millisecond)
	c.Write([]byte("tial\nnext\n"))
	r := bufio.NewReader(c)
	for _, want := range []string{"partial\n", "next\n"} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := r.ReadString('\n'); got != want || err != nil {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	// nil from accept closes the connection.
	ln2, err := l.ListenHandler("tcp", "127.0.0.1:0", func(*Conn) Handler { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	c2, err := net.Dial("tcp", ln2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("refused: %v", err)
	}
}

// A reader slower than the peer: the Conn buffers up to its limit, leaves
// the stream paused, and resumes as Read drains; nothing is lost.
func TestSlowReaderFlowControl(t *testing.T) {
	l := startLoop(t)
	ln := listenLocal(t, l)
	const total = 4 << 20
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := s.Write(chunk); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := l.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Unread, the buffer fills to its limit and the stream stays paused.
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		c.mu.Lock()
		buffered, held := len(c.rbuf)-c.rpos, c.held
		c.mu.Unlock()
		if buffered > readLimit+(1<<20) {
			t.Fatalf("buffered %d: no back-pressure", buffered)
		}
		if held > 0 {
			break
		}
		// Generous: under valgrind the loop runs some 50 times slower.
		if time.Since(start) > 60*time.Second {
			t.Fatalf("buffered %d, never held", buffered)
		}
	}
	time.Sleep(20 * time.Millisecond)
	c.mu.Lock()
	if buffered := len(c.rbuf) - c.rpos; buffered > readLimit+(1<<20) {
		t.Fatalf("buffered %d while held: reading went on", buffered)
	}
	c.mu.Unlock()
	buf := make([]byte, 10000)
	got := 0
	for got < total {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] != byte((got+i)%(64<<10)) {
				t.Fatalf("byte %d is %d", got+i, buf[i])
			}
		}
		got += n
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestSignalArrivesOnTheLoopUntilStop(t *testing.T) {
	l := startLoop(t)
	// The test's own Notify keeps SIGUSR1 from killing the process once
	// the Signal is stopped; it also shows when a signal has arrived.
	seen := make(chan os.Signal, 4)
	ossignal.Notify(seen, syscall.SIGUSR1)
	defer ossignal.Stop(seen)
	calls := 0 // loop goroutine only: -race proves fn runs there
	got := make(chan os.Signal, 4)
	s, err := l.OnSignal(func(v os.Signal) {
		calls++
		got <- v
	}, syscall.SIGUSR1)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != syscall.SIGUSR1 {
			t.Fatalf("got %v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGUSR1 did not arrive on the loop")
	}
	<-seen
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Stop: %v", err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("the second SIGUSR1 did not arrive")
	}
	n := make(chan int, 1)
	if err := l.Post(func() { n <- calls }); err != nil {
		t.Fatal(err)
	}
	if c := <-n; c != 1 {
		t.Fatalf("fn ran %d times, want 1 (once before Stop)", c)
	}
}

func TestSignalEndsWithClose(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	s, err := l.OnSignal(func(os.Signal) {}, syscall.SIGUSR2)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stop after Close: %v", err)
	}
	if _, err := l.OnSignal(func(os.Signal) {}, syscall.SIGUSR2); !errors.Is(err, ErrClosed) {
		t.Fatalf("OnSignal after Close: %v", err)
	}
}

// fakeDNS answers every A query on a UDP port of 127.0.0.1 with addr and
// every other query with no answer (NOERROR), or nothing at all when
// silent. It stops when the test ends.
func fakeDNS(t *testing.T, addr net.IP, silent bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if silent || n < 12 {
				continue
			}
			// The question: header (12 bytes), name labels, type, class.
			end := 12
			for end < n && buf[end] != 0 {
				end += int(buf[end]) + 1
			}
			end += 5 // the root label, type, class
			if end > n {
				continue
			}
			qtype := int(buf[end-4])<<8 | int(buf[end-3])
			resp := append([]byte(nil), buf[:end]...)
			resp[2] = 0x81 // response, recursion desired
			resp[3] = 0x80 // recursion available, NOERROR
			resp[4], resp[5] = 0, 1
			resp[6], resp[7] = 0, 0
			resp[8], resp[9], resp[10], resp[11] = 0, 0, 0, 0
			if qtype == 1 {
				resp[7] = 1
				// Name pointer to the question, A, IN, TTL 60, 4 bytes.
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, addr.To4()...)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String()
}

func TestLookupThroughDNSServer(t *testing.T) {
	l := startLoop(t)
	hosts := t.TempDir() + "/hosts" // empty: the name must come from the server
	if err := os.WriteFile(hosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.SetHostsFile(hosts); err != nil {
		t.Fatal(err)
	}
	want := net.IPv4(192, 0, 2, 7)
	if err := l.SetDNSServers(fakeDNS(t, want, false)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The future also comes as a channel (Done), then Wait has it at once.
	f := l.LookupHost("www.example.test")
	select {
	case <-f.Done():
	case <-ctx.Done():
		t.Fatal("lookup did not finish")
	}
	ips, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || !ips[0].Equal(want) {
		t.Fatalf("www.example.test: %v, want %v", ips, want)
	}
	if err := l.SetDNSServers("not an address"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("malformed server list: %v", err)
	}
}

func TestLookupTimesOutAndWaitFollowsContext(t *testing.T) {
	l := startLoop(t)
	hosts := t.TempDir() + "/hosts"
	if err := os.WriteFile(hosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.SetHostsFile(hosts); err != nil {
		t.Fatal(err)
	}
	if err := l.SetDNSServers(fakeDNS(t, nil, true)); err != nil {
		t.Fatal(err)
	}
	if err := l.SetDNSTimeout(200*time.Millisecond, 1); err != nil {
		t.Fatal(err)
	}
	f := l.LookupHost("silent.example.test")
	// Wait gives up with its context; the lookup goes on.
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with an expired context: %v", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if _, err := f.Wait(ctx); !errors.Is(err, ErrTimedOut) {
		t.Fatalf("silent server: %v, want ErrTimedOut", err)
	}
}

// Protocols stack over the net.Conn adapters as over any net.Conn: Go's
// crypto/tls on both ends of a libasync connection (the Go counterpart of
// the C layer API, async/layer.h).
func TestTLSOverConn(t *testing.T) {
	l := startLoop(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	ln := listenLocal(t, l)
	go echoServer(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := l.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{ServerName: "localhost", RootCAs: roots})
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello over TLS\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello over TLS\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	if v := c.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Fatalf("TLS version %x", v)
	}
}
