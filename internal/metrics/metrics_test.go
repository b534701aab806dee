package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNilIsNoop(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.SessionOpened("r")
	m.SessionClosed("r")
	m.Operation("r", "write", "allow")
	m.SetReviewsPending(3)
	m.ReviewCreated()
	m.ReviewClosed()
	m.StoreLatency("x", time.Millisecond)
	m.TimeStore("x")()
	if m.Registry() != nil {
		t.Fatal("nil Metrics has a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("nil handler status %d", rec.Code)
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	m := New()
	m.SessionOpened("pg-prod")
	m.SessionOpened("pg-prod")
	m.SessionClosed("pg-prod")
	m.Operation("pg-prod", "write", "hold")
	m.Operation("pg-prod", "write", "hold")
	m.Operation("pg-prod", "read", "allow")
	m.SetReviewsPending(4)
	m.ReviewCreated()
	m.ReviewClosed()
	m.ReviewClosed()
	m.TimeStore("append_events")()

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"sessions open", testutil.ToFloat64(m.sessionsOpen.WithLabelValues("pg-prod")), 1},
		{"write hold", testutil.ToFloat64(m.operations.WithLabelValues("pg-prod", "write", "hold")), 2},
		{"read allow", testutil.ToFloat64(m.operations.WithLabelValues("pg-prod", "read", "allow")), 1},
		{"reviews pending", testutil.ToFloat64(m.reviews), 3},
		{"store observations", float64(testutil.CollectAndCount(m.storeLatency)), 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestHandlerExposesNames(t *testing.T) {
	t.Parallel()
	m := New()
	m.SessionOpened("a")
	m.Operation("a", "read", "allow")
	m.StoreLatency("ping", time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, name := range []string{
		`countersign_sessions_open{resource="a"} 1`,
		`countersign_operations_total{decision="allow",kind="read",resource="a"} 1`,
		"countersign_reviews_pending 0",
		`countersign_store_latency_seconds_count{op="ping"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), name) {
			t.Errorf("metrics output lacks %q", name)
		}
	}
}

func TestTwoInstancesDoNotCollide(t *testing.T) {
	t.Parallel()
	a, b := New(), New()
	a.SessionOpened("x")
	if testutil.ToFloat64(b.sessionsOpen.WithLabelValues("x")) != 0 {
		t.Fatal("metrics are shared between instances")
	}
}
