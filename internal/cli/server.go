package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/postgres/pgestimate"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/pki"
	"github.com/countersign/countersign/internal/store"
)

// Server is a running gateway: the API listener and every engine the config
// names, over one store.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	st      store.Store
	bundle  *pki.Bundle
	metrics *metrics.Metrics
	core    *core
	engines *engines
	http    *http.Server
	apiAddr string
	errc    chan error
}

// StartServer opens the store, loads or makes the TLS identity, binds every
// listener and starts serving. Listen addresses with port 0 get a free port;
// the bound ones are in APIAddr, PostgresAddr and MySQLAddr. On error,
// everything it started is stopped again.
func StartServer(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	s := &Server{cfg: cfg, log: log, metrics: metrics.New(), errc: make(chan error, 4)}
	if err := s.start(ctx); err != nil {
		s.abort()
		return nil, err
	}
	log.Info("countersign serving", "version", version(), "api", s.apiAddr,
		"postgres", s.engines.postgresAddr, "mysql", s.engines.mysqlAddr, "data_dir", cfg.DataDir, "ca", s.bundle.CAPath)
	return s, nil
}

func (s *Server) start(ctx context.Context) (err error) {
	cfg := s.cfg
	if err = cfg.EnsureDataDir(); err != nil {
		return err
	}
	if s.st, err = store.Open(ctx, cfg.Store); err != nil {
		return fmt.Errorf("open the store: %w", err)
	}
	if s.bundle, err = pki.ForConfig(cfg.TLS, cfg.DataDir, cfg.Listen.Hostnames); err != nil {
		return err
	}
	login, err := newLogin(ctx, cfg)
	if err != nil {
		return err
	}
	// Roles come from the role table running now, not the one a token
	// was issued under (identity.Tokens.WithRoles).
	tokens := identity.NewTokens(s.st).WithRoles(api.RoleTable(cfg.Identity.Roles))
	if s.core, err = openCore(ctx, cfg, s.st, s.metrics, s.log); err != nil {
		return err
	}
	for _, u := range s.core.rec.Unclosed() {
		s.log.Warn("recording: a previous chain ended without a closing checkpoint; its tail stays unsigned", "chain", u.String())
	}
	if s.engines, err = startEngines(ctx, engineDeps{
		cfg: cfg, store: s.st, tokens: tokens, tls: s.bundle.ServerTLS(), metrics: s.metrics, log: s.log, core: s.core, errc: s.errc,
	}); err != nil {
		return err
	}
	return s.startAPI(tokens, login)
}

// newLogin prepares the OIDC login when identity.oidc is configured. A nil
// *identity.OIDC must not become a non-nil api.Login, hence the two returns.
func newLogin(ctx context.Context, cfg *config.Config) (api.Login, error) {
	o := cfg.Identity.OIDC
	if o == nil {
		return nil, nil
	}
	oidc, err := identity.NewOIDC(ctx, identity.OIDCConfig{
		Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		GroupsClaim: o.GroupsClaim, Scopes: o.Scopes,
		Roles: api.RoleTable(cfg.Identity.Roles),
	})
	if err != nil {
		return nil, err
	}
	return oidc, nil
}

func (s *Server) startAPI(tokens *identity.Tokens, login api.Login) error {
	if s.cfg.Listen.API == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen.API)
	if err != nil {
		return fmt.Errorf("listen.api: cannot listen on %s: %w; free the port or change listen.api", s.cfg.Listen.API, err)
	}
	s.apiAddr = ln.Addr().String()
	h := api.New(api.Options{
		Config: s.cfg, Store: s.st, Tokens: tokens, Login: login, Metrics: s.metrics, Logger: s.log,
		Reviews: s.core.reviews, Recorder: s.core.rec, Estimator: pgestimate.New(s.cfg, s.log),
		Info: api.Info{Version: version(), Postgres: s.engines.postgresAddr, MySQL: s.engines.mysqlAddr, CAPEM: string(s.bundle.CAPEM)},
	})
	s.http = &http.Server{
		Handler:           h,
		TLSConfig:         s.bundle.ServerTLS(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug), // TLS handshake noise from scanners
	}
	go func() {
		if err := s.http.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("the API listener stopped: %w", err)
		}
	}()
	return nil
}

// APIAddr is the API's bound address ("" when listen.api is empty).
func (s *Server) APIAddr() string { return s.apiAddr }

// PostgresAddr is the PostgreSQL engine's bound address, or "".
func (s *Server) PostgresAddr() string { return s.engines.postgresAddr }

// MySQLAddr is the MySQL engine's bound address, or "".
func (s *Server) MySQLAddr() string { return s.engines.mysqlAddr }

// CAPEM is the CA clients trust to verify the gateway.
func (s *Server) CAPEM() []byte { return s.bundle.CAPEM }

// Metrics is the server's metric set.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Err reports a listener that stopped on its own; serve then shuts down.
func (s *Server) Err() <-chan error { return s.errc }

// Shutdown stops the gateway: the engines stop accepting and drain their
// sessions while the API keeps serving (an approver may be releasing a held
// operation right now); then the API drains, the recording closes and the
// store closes last. ctx bounds the whole drain; past it, sessions are cut.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	// Held operations end first, each with an error that says the gateway
	// is shutting down; then sessions drain.
	s.core.guard.Close()
	if err := s.engines.shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the API: %w", err))
			s.http.Close()
		}
	}
	if err := s.engines.close(); err != nil {
		errs = append(errs, err)
	}
	if err := s.core.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close the recording: %w", err))
	}
	if err := s.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close the store: %w", err))
	}
	return errors.Join(errs...)
}

// abort stops what a failed StartServer had started.
func (s *Server) abort() {
	if s.http != nil {
		s.http.Close()
	}
	if s.engines != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.engines.shutdown(ctx)
		_ = s.engines.close()
	}
	if s.core != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.core.close(ctx)
	}
	if s.st != nil {
		s.st.Close()
	}
}
