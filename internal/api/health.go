package api

import (
	"context"
	"net/http"
	"time"
)

// readyTimeout bounds the store check of /readyz so a hung store makes the
// gateway unready instead of hanging the load balancer's probe.
const readyTimeout = 2 * time.Second

type status struct {
	Status string `json:"status"`
}

// healthz says the process is up; it checks nothing else.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, status{Status: "ok"})
}

// readyz says the gateway can serve: its store answers.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	done := s.Metrics.TimeStore("ping")
	err := s.Store.Ping(ctx)
	done()
	if err != nil {
		s.log.WarnContext(r.Context(), "api: not ready, the store does not answer", "err", err)
		s.writeError(w, r, errorf(http.StatusServiceUnavailable, CodeUnavailable,
			"not ready: the store does not answer; check the store in the gateway's log"))
		return
	}
	writeJSON(w, http.StatusOK, status{Status: "ready"})
}

// info is public: where the engines listen and the CA to trust.
func (s *server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Info)
}
