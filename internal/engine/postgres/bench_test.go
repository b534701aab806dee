package postgres

import (
	"context"
	"strconv"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	"github.com/jackc/pgx/v5"
)

// The benchmarks run pgbench's select-only statement against a small
// table, directly and through the gateway (plaintext both ways, the real
// classifier and catalog; a guard that allows and a recorder that commits
// at once, so what is measured is the engine's own cost). The gateway's
// run reports its ratio to the direct one.

const benchRows = 10000

type benchGuard struct{}

func (benchGuard) Connect(context.Context, *guard.Session) guard.Verdict { return enginetest.Allow() }
func (benchGuard) Decide(context.Context, *guard.Session, *guard.Operation) guard.Verdict {
	return enginetest.Allow()
}
func (benchGuard) Done(context.Context, *guard.Session, *guard.Operation, guard.Verdict, guard.Outcome) {
}

type benchRecorder struct{}

func (benchRecorder) Append(context.Context, recording.Event) *recording.Commit {
	c := recording.NewCommit()
	c.Finish(1, nil)
	return c
}

func benchSetup(b *testing.B) (direct, gateway *pgx.Conn, table string) {
	b.Helper()
	ctx := context.Background()
	ev := newEnv(b, func(o *Options) {
		o.AllowPlaintextLoopback = true
		o.Guard, o.Recorder = benchGuard{}, benchRecorder{}
	})
	direct, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+testDB+"?sslmode=disable")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { direct.Close(ctx) })
	table = "bench_accounts_" + randHex(3)
	if _, err := direct.Exec(ctx, "CREATE TABLE "+table+" (aid int PRIMARY KEY, abalance int); INSERT INTO "+table+
		" SELECT g, g % 100 FROM generate_series(1, "+strconv.Itoa(benchRows)+") g"); err != nil {
		b.Fatal(err)
	}
	gateway, err = pgx.Connect(ctx, ev.url("pg-test", "disable"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { gateway.Close(ctx) })
	return direct, gateway, table
}

func runBoth(b *testing.B, run func(b *testing.B, c *pgx.Conn, table string)) {
	direct, gateway, table := benchSetup(b)
	var directNs float64
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		run(b, direct, table)
		directNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("gateway", func(b *testing.B) {
		b.ReportAllocs()
		run(b, gateway, table)
		if directNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/directNs, "x_direct")
		}
	})
}

// BenchmarkSimpleQuery: pgbench -M simple: a new literal every time.
func BenchmarkSimpleQuery(b *testing.B) {
	runBoth(b, func(b *testing.B, c *pgx.Conn, table string) {
		ctx := context.Background()
		var bal int32
		for i := 0; b.Loop(); i++ {
			q := "SELECT abalance FROM " + table + " WHERE aid = " + strconv.Itoa(i%benchRows+1)
			if err := c.QueryRow(ctx, q, pgx.QueryExecModeSimpleProtocol).Scan(&bal); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkExtendedQuery: pgbench -M prepared: Bind/Execute/Sync of a
// statement prepared once.
func BenchmarkExtendedQuery(b *testing.B) {
	runBoth(b, func(b *testing.B, c *pgx.Conn, table string) {
		ctx := context.Background()
		q := "SELECT abalance FROM " + table + " WHERE aid = $1"
		var bal int32
		for i := 0; b.Loop(); i++ {
			if err := c.QueryRow(ctx, q, pgx.QueryExecModeCacheStatement, int32(i%benchRows+1)).Scan(&bal); err != nil {
				b.Fatal(err)
			}
		}
	})
}
