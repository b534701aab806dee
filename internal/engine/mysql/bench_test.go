package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/recording"
)

// The benchmarks run a point select (sysbench's oltp_point_select
// statement) against a small table, directly and through the gateway, in
// one run (plaintext both ways; the real classifier; a guard that allows
// and a recorder that commits at once, so what is measured is the
// engine's own cost). The gateway's run reports its throughput relative
// to the direct one as "x_direct" (1.0 = as fast).
//
//	go test -run '^$' -bench . -benchtime 5s ./internal/engine/mysql/

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

func benchSetup(b *testing.B) (direct, gateway *sql.DB, table string) {
	return benchSetupWith(b, nil)
}

// benchSetupWith is benchSetup with the engine's options tweaked.
func benchSetupWith(b *testing.B, tweak func(*Options)) (direct, gateway *sql.DB, table string) {
	b.Helper()
	ev := newEnv(b, func(o *Options) {
		o.AllowPlaintextLoopback = true
		o.Guard, o.Recorder = benchGuard{}, benchRecorder{}
		if tweak != nil {
			tweak(o)
		}
	})
	table = "sbtest_" + randHex(3)
	if err := adminExec(fmt.Sprintf("CREATE TABLE %s.%s (id INT PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60))", testDB, table),
		fmt.Sprintf("INSERT INTO %s.%s SELECT seq, seq %% 100, REPEAT('c', 120), REPEAT('p', 60) FROM %[1]s.seq_1_to_%[3]d", testDB, table, benchRows)); err != nil {
		b.Fatal(err)
	}
	var err error
	if direct, err = sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(127.0.0.1:3306)/%s", nativeUser, userPass, testDB)); err != nil {
		b.Fatal(err)
	}
	if gateway, err = sql.Open("mysql", fmt.Sprintf("my-test:%s@tcp(%s)/?allowCleartextPasswords=true", enginetest.Token, ev.addr)); err != nil {
		b.Fatal(err)
	}
	for _, db := range []*sql.DB{direct, gateway} {
		db.SetMaxIdleConns(64)
		b.Cleanup(func() { db.Close() })
	}
	return direct, gateway, table
}

func runBoth(b *testing.B, run func(b *testing.B, db *sql.DB, table string)) {
	runBothWith(b, nil, run)
}

func runBothWith(b *testing.B, tweak func(*Options), run func(b *testing.B, db *sql.DB, table string)) {
	direct, gateway, table := benchSetupWith(b, tweak)
	var directNs float64
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		run(b, direct, table)
		directNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("gateway", func(b *testing.B) {
		b.ReportAllocs()
		run(b, gateway, table)
		if gw := float64(b.Elapsed().Nanoseconds()) / float64(b.N); directNs > 0 && gw > 0 {
			b.ReportMetric(directNs/gw, "x_direct")
		}
	})
}

// BenchmarkPointSelect: one client, a new literal every time (text
// protocol, as mysqlslap and most ORMs without prepared statements).
func BenchmarkPointSelect(b *testing.B) {
	runBoth(b, func(b *testing.B, db *sql.DB, table string) {
		q := "SELECT c FROM " + table + " WHERE id = "
		var c string
		for i := 0; b.Loop(); i++ {
			if err := db.QueryRow(q + strconv.Itoa(1+i%benchRows)).Scan(&c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPointSelectParallel: GOMAXPROCS*4 clients at once.
func BenchmarkPointSelectParallel(b *testing.B) {
	runBoth(b, func(b *testing.B, db *sql.DB, table string) {
		q := "SELECT c FROM " + table + " WHERE id = "
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			var c string
			for pb.Next() {
				if err := db.QueryRow(q + strconv.Itoa(1+rand.IntN(benchRows))).Scan(&c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPointSelectMaskedParallel: as BenchmarkPointSelectParallel,
// with masking rules on the resource (a column rule that does not cover
// the selected column, and a detector rule, so every value is scanned).
func BenchmarkPointSelectMaskedParallel(b *testing.B) {
	rules, err := mask.Compile([]config.MaskRule{
		{Columns: []string{"*.ssn"}, Strategy: "redact"},
		{Detectors: []string{"email"}, Strategy: "redact"},
	})
	if err != nil {
		b.Fatal(err)
	}
	filter := MaskFilter(map[string]*mask.Rules{"my-test": rules})
	runBothWith(b, func(o *Options) { o.Filter = filter }, func(b *testing.B, db *sql.DB, table string) {
		q := "SELECT c FROM " + table + " WHERE id = "
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			var c string
			for pb.Next() {
				if err := db.QueryRow(q + strconv.Itoa(1+rand.IntN(benchRows))).Scan(&c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPointSelectPrepared: one client, the binary protocol.
func BenchmarkPointSelectPrepared(b *testing.B) {
	runBoth(b, func(b *testing.B, db *sql.DB, table string) {
		st, err := db.Prepare("SELECT c FROM " + table + " WHERE id = ?")
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		var c string
		for i := 0; b.Loop(); i++ {
			if err := st.QueryRow(1 + i%benchRows).Scan(&c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPointSelectRatio measures throughput with 8 concurrent
// clients, alternating direct and gateway rounds so that both see the same
// load from whatever else runs on the machine, and reports the median of
// the rounds' ratios (gateway queries/s over direct queries/s) as
// x_direct. It does its own rounds: run it with -benchtime 1x.
//
//	go test -run '^$' -bench PointSelectRatio -benchtime 1x ./internal/engine/mysql/
func BenchmarkPointSelectRatio(b *testing.B) {
	const clients, rounds, perRound = 8, 9, 4000
	direct, gateway, table := benchSetup(b)
	q := "SELECT c FROM " + table + " WHERE id = "
	round := func(db *sql.DB) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < clients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var c string
				for i := 0; i < perRound/clients; i++ {
					if err := db.QueryRow(q + strconv.Itoa(1+rand.IntN(benchRows))).Scan(&c); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	round(direct) // warm both pools and the classifier
	round(gateway)
	var ratios []float64
	var dq, gq float64
	for b.Loop() {
		ratios = ratios[:0]
		dq, gq = 0, 0
		for range rounds {
			d, g := round(direct), round(gateway)
			ratios = append(ratios, d.Seconds()/g.Seconds())
			dq += perRound / d.Seconds()
			gq += perRound / g.Seconds()
		}
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "x_direct")
	b.ReportMetric(dq/rounds, "direct_q/s")
	b.ReportMetric(gq/rounds, "gateway_q/s")
}
