package email

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/microdeets/microchat/inbox/inboxtest"
)

// heldSink holds each Import until the test releases it.
type heldSink struct {
	*fakeSink
	calls   atomic.Int32
	release chan struct{}
}

func (s *heldSink) Import(ctx context.Context, fs []Fetched) error {
	s.calls.Add(1)
	<-s.release
	return s.fakeSink.Import(ctx, fs)
}

// While the Sink stores a batch, the Ingester fetches the next one (a
// distant server's FETCH takes about as long as storing a batch), and
// hands it over only once the first is stored: one Import at a time, in
// UID order, the keyword set on each batch after it is stored.
func TestFetchWhileStoring(t *testing.T) {
	h := newHarness(t, nil)
	h.opts.Batch = 5
	for i := range 15 {
		h.append(fmt.Sprint("m", i), time.Hour)
	}
	sink := &heldSink{fakeSink: h.sink, release: make(chan struct{})}
	var released sync.Once
	release := func() { released.Do(func() { close(sink.release) }) }
	h.startWith(sink)
	t.Cleanup(release) // runs before the Ingester's, should the test fail
	// The metadata, the first batch, and the second while the first is
	// being stored.
	inboxtest.Eventually(t, "the second batch fetched while the first is stored", func() bool {
		return h.srv.Commands("UID FETCH") == 3
	})
	if n := sink.calls.Load(); n != 1 {
		t.Fatalf("%d Imports at once, want 1", n)
	}
	if n := h.srv.Commands("UID STORE"); n != 0 {
		t.Fatalf("keyword set (%d UID STORE) before the batch was stored", n)
	}
	release()
	h.idle("the first sync")
	if n := sink.calls.Load(); n != 3 {
		t.Fatalf("%d Imports, want 3 batches", n)
	}
	var ids []string
	for i := range 15 {
		ids = append(ids, fmt.Sprintf("m%d@test", i))
	}
	h.store.checkOnce(t, ids)
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for i, f := range h.store.imports {
		if f.UID != uint32(i+1) {
			t.Fatalf("import %d is UID %d: not in UID order", i, f.UID)
		}
	}
	if n := h.srv.Commands("UID STORE"); n != 3 {
		t.Fatalf("%d UID STORE, want the keyword set once per batch", n)
	}
}
