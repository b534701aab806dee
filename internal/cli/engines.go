package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/mysql"
	"github.com/countersign/countersign/internal/engine/postgres"
	"github.com/countersign/countersign/internal/engine/postgres/pgmask"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/store"
)

// engineDeps is what the engines share with the rest of the gateway.
type engineDeps struct {
	cfg     *config.Config
	store   store.Store
	tokens  *identity.Tokens
	tls     *tls.Config
	metrics *metrics.Metrics
	log     *slog.Logger
	core    *core
	errc    chan<- error // a listener that stops on its own reports here
}

// engine is a started protocol engine.
type engine interface {
	Shutdown(ctx context.Context) error
}

// engines is every engine serve started, with their bound addresses, and
// what they share that must be closed after them (the recording).
type engines struct {
	running      []engine
	closers      []func() error
	postgresAddr string
	mysqlAddr    string
}

// startEngines binds and starts every engine listener the config names.
func startEngines(ctx context.Context, deps engineDeps) (*engines, error) {
	e := &engines{}
	if addr := deps.cfg.Listen.Postgres; addr != "" {
		masker, err := e.postgresMasker(deps, func(resource string) *mask.Rules {
			if r, ok := deps.cfg.Resource(resource); !ok || len(r.Policy.Masking) == 0 {
				return nil
			}
			return deps.core.masks[resource]
		})
		if err != nil {
			return e, err
		}
		capture, err := e.captureFilter(deps)
		if err != nil {
			return e, err
		}
		var replica uint8
		var relay postgres.CancelRelay
		if pg, ok := deps.store.(*store.Postgres); ok {
			// Replicas: a client's cancel may reach any of them.
			r, err := pg.CancelRelay(ctx, deps.log)
			if err != nil {
				return e, err
			}
			e.closers = append(e.closers, r.Close)
			replica, relay = r.Replica(), r
			deps.log.Info("postgres cancel requests are relayed between replicas", "replica", replica)
		}
		en, err := postgres.New(postgres.Options{
			TLS:                    deps.tls,
			AllowPlaintextLoopback: deps.cfg.Listen.AllowPlaintextLoopback,
			Resource:               deps.cfg.Resource,
			Auth:                   deps.tokens,
			Guard:                  deps.core.engineGuard(masker.Guard(deps.core.guard)),
			Recorder:               deps.core.engineRecorder(),
			Classifier:             sqlkind.NewPostgres(sqlkind.PostgresOptions{}),
			Filter: func(s *guard.Session, op *guard.Operation, v guard.Verdict) postgres.ResultFilter {
				if f := masker.Filter(s, op, v); f != nil {
					return f
				}
				return nil // a nil *filter must not become a non-nil interface
			},
			Capture:     capture,
			Messages:    masker,
			Limits:      deps.cfg.Limits,
			ReplicaID:   replica,
			CancelRelay: relay,
			Logger:      deps.log,
		})
		if err != nil {
			return e, err
		}
		if e.postgresAddr, err = e.serve(deps, "listen.postgres", addr, en, postgres.ErrClosed); err != nil {
			return e, err
		}
	}
	recMasks, err := recordingMasks(deps.cfg)
	if err != nil {
		return e, err
	}
	if addr := deps.cfg.Listen.MySQL; addr != "" {
		en, err := mysql.New(mysql.Options{
			TLS:                    deps.tls,
			AllowPlaintextLoopback: deps.cfg.Listen.AllowPlaintextLoopback,
			Resource:               deps.cfg.Resource,
			Auth:                   deps.tokens,
			Guard:                  deps.core.engineGuard(deps.core.guard),
			Recorder:               deps.core.engineRecorder(),
			Classifier:             sqlkind.NewMySQL(sqlkind.MySQLOptions{}),
			Filter:                 mysql.MaskFilter(deps.core.masks),
			Capture:                mysqlCapture(recMasks),
			Limits:                 deps.cfg.Limits,
			Logger:                 deps.log,
		})
		if err != nil {
			return e, err
		}
		if e.mysqlAddr, err = e.serve(deps, "listen.mysql", addr, en, mysql.ErrClosed); err != nil {
			return e, err
		}
	}
	return e, nil
}

// postgresMasker builds the masking of PostgreSQL results: each resource's
// compiled rules, and a small pool per resource for the catalog lookups
// that resolve where a result column comes from. The pools close with the
// engines.
func (e *engines) postgresMasker(deps engineDeps, rules func(resource string) *mask.Rules) (*pgmask.Masker, error) {
	var mu sync.Mutex
	pools := map[string]*pgxpool.Pool{}
	e.closers = append(e.closers, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pools {
			p.Close()
		}
		return nil
	})
	return pgmask.New(pgmask.Options{
		Rules: rules,
		Querier: func(resource string) (lineage.Querier, error) {
			mu.Lock()
			defer mu.Unlock()
			if p, ok := pools[resource]; ok {
				return p, nil
			}
			res, ok := deps.cfg.Resource(resource)
			if !ok {
				return nil, fmt.Errorf("no resource %q", resource)
			}
			p, err := postgres.UpstreamPool(res, "countersign masking", 2)
			if err != nil {
				return nil, err
			}
			pools[resource] = p
			return p, nil
		},
		Logger: deps.log,
	})
}

// servingEngine is what every protocol engine provides.
type servingEngine interface {
	engine
	Serve(ln net.Listener) error
}

// serve binds addr and runs the engine on it; closed is the error its
// Serve returns after Shutdown.
func (e *engines) serve(deps engineDeps, key, addr string, en servingEngine, closed error) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: cannot listen on %s: %w; free the port or change %s", key, addr, err, key)
	}
	go func() {
		if err := en.Serve(ln); err != nil && !errors.Is(err, closed) {
			deps.errc <- fmt.Errorf("%s stopped: %w", key, err)
		}
	}()
	e.running = append(e.running, en)
	return ln.Addr().String(), nil
}

// shutdown stops every engine: stop accepting, drain sessions until ctx
// ends, then cut the rest.
func (e *engines) shutdown(ctx context.Context) error {
	var errs []error
	for _, en := range e.running {
		if err := en.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close closes what the engines shared (the recording), after they stopped.
func (e *engines) close() error {
	var errs []error
	for _, c := range e.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}
