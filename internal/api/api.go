package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/store"
)

// Login is the OIDC login the API offers; *identity.OIDC provides it. Nil
// in Options when no OIDC is configured: the login endpoints then answer
// not_configured.
type Login interface {
	// Start begins an authorization-code login with PKCE; the browser goes
	// to authURL, the provider redirects to redirectURI with code and state.
	Start(ctx context.Context, redirectURI string) (authURL, state string, err error)
	// Finish exchanges the code, verifies the ID token and returns who
	// logged in, with the roles of their groups.
	Finish(ctx context.Context, state, code string) (identity.Identity, error)
	// DeviceStart and DevicePoll are the device authorization grant;
	// DeviceStart fails with identity.ErrDeviceUnsupported where the
	// provider has none.
	DeviceStart(ctx context.Context) (identity.DeviceAuth, error)
	DevicePoll(ctx context.Context, handle string) (id identity.Identity, done bool, err error)
}

// Options are what New needs. Config, Store and Tokens are required.
type Options struct {
	Config  *config.Config
	Store   store.Store
	Tokens  *identity.Tokens
	Login   Login            // nil: no OIDC
	Metrics *metrics.Metrics // nil: /metrics serves an empty registry
	Info    Info             // what GET /v1/info tells clients
	Logger  *slog.Logger     // nil: slog.Default()
	// Reviews is the review service: reviews and grants are decided
	// through it alone. Nil: those endpoints answer not_configured.
	Reviews *review.Service
	// Recorder is the gateway's recording; its public key verifies the
	// trail. Nil: audit verify and pubkey answer not_configured.
	Recorder *recording.Log
	// Estimator guesses the rows a pending operation review would change,
	// for GET /v1/reviews/{id}. Nil: every review shows "no estimate".
	Estimator review.Estimator
}

// Info is the public description of the gateway that clients read before
// connecting: where the engines listen and which CA to trust.
type Info struct {
	Version string `json:"version"`
	// Postgres and MySQL are the engines' bound listen addresses (host:port),
	// empty when the engine is not started.
	Postgres string `json:"postgres,omitempty"`
	MySQL    string `json:"mysql,omitempty"`
	// CAPEM is the CA that verifies the gateway's certificate.
	CAPEM string `json:"ca_pem,omitempty"`
	// OIDC says whether the gateway offers `countersign login`.
	OIDC bool `json:"oidc"`
}

type server struct {
	Options
	log *slog.Logger
	mux *http.ServeMux
	// policies are the compiled resource policies, for the read side
	// (who approves what); decisions are review.Service's.
	policies map[string]*policy.Policy
	// roles is identity.roles: a caller's roles are its token's groups
	// mapped through it at each request (authenticate).
	roles map[string][]identity.Role
}

// New returns the API handler. Serve it over TLS.
func New(o Options) http.Handler {
	s := &server{Options: o, log: o.Logger, mux: http.NewServeMux(), policies: compilePolicies(o.Config),
		roles: RoleTable(o.Config.Identity.Roles)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.Info.OIDC = o.Login != nil
	s.routes()
	return s
}

func (s *server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /metrics", s.Metrics.Handler())
	m.HandleFunc("GET /v1/info", s.info)

	m.HandleFunc("POST /v1/login/start", s.loginStart)
	m.HandleFunc("POST /v1/login/finish", s.loginFinish)
	m.HandleFunc("POST /v1/login/device/start", s.deviceStart)
	m.HandleFunc("POST /v1/login/device/poll", s.devicePoll)

	m.HandleFunc("GET /v1/me", s.authed(s.me))
	m.HandleFunc("POST /v1/connect", s.authed(s.connect))
	m.HandleFunc("GET /v1/tokens", s.authed(s.listTokens))
	m.HandleFunc("DELETE /v1/tokens/{id}", s.authed(s.revokeToken))
	s.reviewRoutes()
}

// ServeHTTP routes the request; what the mux itself would answer (unknown
// path, wrong method) is answered in the API's JSON error shape instead.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	// mux.Handler only looks the route up; mux.ServeHTTP also sets the
	// path values ({id}) the handler reads.
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.notRouted(sw, r)
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	// Never the Authorization header or a body: they hold secrets.
	s.log.DebugContext(r.Context(), "api request", "method", r.Method, "path", r.URL.Path,
		"status", sw.status, "duration", time.Since(start))
}

// notRouted answers 404 or 405 (with Allow) as JSON.
func (s *server) notRouted(w http.ResponseWriter, r *http.Request) {
	probe := &headerProbe{header: http.Header{}}
	h, _ := s.mux.Handler(r)
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, CodeMethod,
			"%s is not allowed on %s; allowed: %s (see docs/api.md)", r.Method, r.URL.Path, probe.header.Get("Allow")))
		return
	}
	s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "there is no endpoint %s %s (see docs/api.md)", r.Method, r.URL.Path))
}

// headerProbe records what the mux's fallback handler would answer,
// discarding its plain-text body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(status int)      { p.status = status }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
