// Package metrics holds the gateway's Prometheus metrics in a registry of its
// own (never the global one, so two gateways in one test process do not
// collide):
//
//	countersign_sessions_open{resource}                  gauge
//	countersign_operations_total{resource,kind,decision} counter
//	countersign_reviews_pending                          gauge
//	countersign_store_latency_seconds{op}                histogram
//
// Engines and services call the typed helpers (SessionOpened, Operation,
// ...). A nil *Metrics is valid and does nothing, so code under test need
// not build one. Metrics observe; they never decide anything, and a metric
// that cannot be recorded never blocks or fails an operation.
package metrics
