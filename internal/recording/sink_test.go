package recording_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign/internal/recording"
)

// The webhook retries until the receiver takes the lines.
func TestWebhookSinkRetries(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(r.Body)
		mu.Lock()
		for sc.Scan() {
			got = append(got, sc.Text())
		}
		mu.Unlock()
	}))
	defer srv.Close()
	ctx := context.Background()
	sink := recording.NewWebhookSink(srv.URL, srv.Client(), 0)
	l := openLog(t, newMemStore(), recording.Options{Sinks: []recording.Sink{sink}})
	for i := range 5 {
		if err := l.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: i}).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil { // closes the sink: delivers what is queued
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// chain.start, 5 operations, chain.close, the Final checkpoint.
	if len(got) != 8 || !strings.Contains(got[7], `"kind":"checkpoint"`) || !strings.Contains(got[7], `"final":true`) {
		t.Fatalf("webhook got %d lines: %v", len(got), got)
	}
	if sink.Dropped() != 0 {
		t.Fatalf("dropped %d", sink.Dropped())
	}
}

// A sink whose destination hangs never holds up a commit: its queue fills,
// lines are dropped and counted.
func TestSlowSinkNeverBlocks(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	}))
	defer srv.Close()
	defer close(release)
	ctx := context.Background()
	sink := recording.NewWebhookSink(srv.URL, srv.Client(), 4)
	// Wrapped, so that the Log does not close it: the test does.
	l := openLog(t, newMemStore(), recording.Options{Sinks: []recording.Sink{struct{ recording.Sink }{sink}}})
	for i := range 200 {
		if err := l.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: i}).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if sink.Dropped() == 0 {
		t.Fatal("a hung sink held 200 lines in a queue of 4")
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Closing gives up on the hung destination when ctx ends: the request in
	// flight is cancelled, the rest is counted as dropped.
	dropped := sink.Dropped()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := sink.Close(cctx); err == nil {
		t.Fatal("close reported success with lines undelivered")
	}
	if sink.Dropped() <= dropped {
		t.Fatal("undelivered lines were not counted")
	}
}
