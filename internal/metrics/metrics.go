package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the gateway's metric set. The zero value is not usable; build
// one with New. A nil *Metrics is a no-op.
type Metrics struct {
	reg          *prometheus.Registry
	sessionsOpen *prometheus.GaugeVec
	operations   *prometheus.CounterVec
	reviews      prometheus.Gauge
	storeLatency *prometheus.HistogramVec
}

// New builds the metrics in a fresh registry, with the Go runtime and
// process collectors beside them.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sessionsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "countersign_sessions_open",
			Help: "Client sessions open now, by resource.",
		}, []string{"resource"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "countersign_operations_total",
			Help: "Operations decided, by resource, kind and decision.",
		}, []string{"resource", "kind", "decision"}),
		reviews: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "countersign_reviews_pending",
			Help: "Reviews waiting for approval.",
		}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "countersign_store_latency_seconds",
			Help:    "Latency of store calls, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}, []string{"op"}),
	}
	m.reg.MustRegister(m.sessionsOpen, m.operations, m.reviews, m.storeLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics live in (nil for a nil *Metrics).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the registry in the Prometheus text format. A nil
// *Metrics serves an empty registry.
func (m *Metrics) Handler() http.Handler {
	reg := m.Registry()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// SessionOpened counts a session of the resource as open.
func (m *Metrics) SessionOpened(resource string) {
	if m != nil {
		m.sessionsOpen.WithLabelValues(resource).Inc()
	}
}

// SessionClosed counts a session of the resource as closed; call it once
// for every SessionOpened.
func (m *Metrics) SessionClosed(resource string) {
	if m != nil {
		m.sessionsOpen.WithLabelValues(resource).Dec()
	}
}

// Operation counts one decided operation. kind and decision are the
// String() forms of sqlkind.Kind and guard.Decision; they are passed as
// strings so this package depends on neither.
func (m *Metrics) Operation(resource, kind, decision string) {
	if m != nil {
		m.operations.WithLabelValues(resource, kind, decision).Inc()
	}
}

// SetReviewsPending sets the number of reviews waiting for approval.
func (m *Metrics) SetReviewsPending(n int) {
	if m != nil {
		m.reviews.Set(float64(n))
	}
}

// ReviewCreated and ReviewClosed move the pending count by one, for code
// that sees reviews one at a time.
func (m *Metrics) ReviewCreated() {
	if m != nil {
		m.reviews.Inc()
	}
}

// ReviewClosed counts a review as no longer pending (approved, rejected,
// expired).
func (m *Metrics) ReviewClosed() {
	if m != nil {
		m.reviews.Dec()
	}
}

// StoreLatency records how long one store call took.
func (m *Metrics) StoreLatency(op string, d time.Duration) {
	if m != nil {
		m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
	}
}

// TimeStore starts timing a store call; call the returned func when it ends:
//
//	defer m.TimeStore("append_events")()
func (m *Metrics) TimeStore(op string) func() {
	if m == nil {
		return func() {}
	}
	start := time.Now()
	return func() { m.StoreLatency(op, time.Since(start)) }
}
