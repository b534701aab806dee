package postgres

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/store"
	"github.com/jackc/pgx/v5"
)

// The full-path benchmarks put the real guard (with its review service)
// and the real recording (chained, hashed, redaction hook unset) in front
// of the engine, over a store that keeps nothing: what they measure is
// the gateway's own cost per statement, everything but the store's
// durable write, which bench/pgbench.sh measures with the rest. They
// report the process's CPU per statement (cpu-µs/op: the in-process pgx
// client's share included, the same for every build) besides ns/op.

// discardStore is a recording store that keeps nothing.
type discardStore struct{}

func (discardStore) AppendEvents(context.Context, []recording.Stored) error { return nil }
func (discardStore) Events(context.Context, string, int64, int) ([]recording.Stored, error) {
	return nil, nil
}
func (discardStore) Writers(context.Context) ([]string, error)                 { return nil, nil }
func (discardStore) AddCheckpoint(context.Context, recording.Checkpoint) error { return nil }
func (discardStore) Checkpoints(context.Context, string) ([]recording.Checkpoint, error) {
	return nil, nil
}

func fullSetup(b *testing.B) (*pgx.Conn, string) {
	b.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	res := config.Resource{Name: "pg-full", Type: "postgres", Address: "127.0.0.1:5432", Database: testDB,
		Username: "postgres", Password: "not-used-with-trust",
		Policy: config.Policy{Access: []string{"engineers", "dba-leads"},
			Review: config.Review{Kinds: []string{"write", "schema", "privilege", "admin", "unknown"},
				Approvers: []string{"dba-leads"}, Approvals: 1, Mode: "reject",
				WaitTimeout: time.Minute, ReviewTimeout: time.Hour, ValidFor: time.Hour}}}
	cfg := &config.Config{Identity: config.Identity{Roles: grantTxRoles}, Resources: []config.Resource{res}}
	st, err := store.Open(ctx, "sqlite://"+b.TempDir()+"/s.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := recording.Open(ctx, discardStore{}, recording.Options{Key: key, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rec.Close(context.Background()) })
	policies, err := guard.Policies(cfg)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := review.New(review.Options{Store: st, Policies: policies, Identity: cfg.Identity, Recorder: rec, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	gate, err := guard.New(guard.Options{Config: cfg, Reviews: svc, Recorder: rec,
		DigestKey: []byte("0123456789abcdef0123456789abcdef"), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gate.Close)
	ev := newEnv(b, func(o *Options) {
		o.AllowPlaintextLoopback = true
		o.Guard, o.Auth, o.Recorder = gate, grantTxAuth{}, rec
	})
	ev.res[res.Name] = &res
	table := "bench_full_" + randHex(3)
	if err := adminExec2("CREATE TABLE " + table + " (aid int PRIMARY KEY, abalance int); INSERT INTO " + table +
		" SELECT g, g % 100 FROM generate_series(1, " + strconv.Itoa(benchRows) + ") g"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = adminExec2("DROP TABLE " + table) })
	c, err := pgx.Connect(ctx, ev.url("pg-full", "disable"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(context.Background()) })
	return c, table
}

// cpuTime is the process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runFull(b *testing.B, run func(b *testing.B, c *pgx.Conn, table string)) {
	c, table := fullSetup(b)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	run(b, c, table)
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkFullSimpleQuery: pgbench -M simple through the whole gateway.
func BenchmarkFullSimpleQuery(b *testing.B) {
	runFull(b, func(b *testing.B, c *pgx.Conn, table string) {
		ctx := context.Background()
		var bal int32
		for i := 0; i < b.N; i++ {
			q := "SELECT abalance FROM " + table + " WHERE aid = " + strconv.Itoa(i%benchRows+1)
			if err := c.QueryRow(ctx, q, pgx.QueryExecModeSimpleProtocol).Scan(&bal); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFullExtendedQuery: pgbench -M prepared through the whole
// gateway.
func BenchmarkFullExtendedQuery(b *testing.B) {
	runFull(b, func(b *testing.B, c *pgx.Conn, table string) {
		ctx := context.Background()
		q := "SELECT abalance FROM " + table + " WHERE aid = $1"
		var bal int32
		for i := 0; i < b.N; i++ {
			if err := c.QueryRow(ctx, q, pgx.QueryExecModeCacheStatement, int32(i%benchRows+1)).Scan(&bal); err != nil {
				b.Fatal(err)
			}
		}
	})
}
