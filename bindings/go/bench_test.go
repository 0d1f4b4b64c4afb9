package async

import (
	"runtime"
	"testing"
)

// Cost per event: through the completion queue (records in batches of
// 256, one cgo call per batch) against C→Go callbacks with a cgo.Handle
// lookup each. Run: go test -run X -bench Events (README: Benchmarks).
func benchEvents(b *testing.B, deliver func(l *Loop, n int) int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l, err := New()
	if err != nil {
		b.Fatal(err)
	}
	n := (b.N + batchSize - 1) / batchSize * batchSize
	b.ResetTimer()
	if got := deliver(l, n); got != n {
		b.Fatalf("%d events of %d", got, n)
	}
	b.StopTimer()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkQueueEvents(b *testing.B) {
	benchEvents(b, func(l *Loop, n int) int { return l.benchQueueEvents(n) })
}

func BenchmarkCallbackEvents(b *testing.B) {
	benchEvents(b, func(l *Loop, n int) int { return l.benchCallbackEvents(n) })
}

// TestEventBenchmarksCount runs both paths once so that go test checks them.
func TestEventBenchmarksCount(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if got := l.benchQueueEvents(1024); got != 1024 {
		t.Fatalf("queue: %d", got)
	}
	if got := l.benchCallbackEvents(1024); got != 1024 {
		t.Fatalf("callbacks: %d", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
