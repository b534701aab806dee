package recording_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
)

// freshPostgres creates cs_rec_test_<random> and drops it when tb ends.
func freshPostgres(tb testing.TB) string { return storetest.PostgresDatabase(tb, "cs_rec_test") }

// pgTamper is the real PostgreSQL store, attacked by someone with a
// connection to its database.
type pgTamper struct {
	store.Store
	raw *pgx.Conn
}

func newPostgresTamper(t *testing.T) tamperStore {
	t.Helper()
	ctx := context.Background()
	url := freshPostgres(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: both close before the database is dropped.
	t.Cleanup(func() { st.Close(); raw.Close(context.Background()) })
	return &pgTamper{Store: st, raw: raw}
}

func (p *pgTamper) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	tag, err := p.raw.Exec(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if tag.RowsAffected() == 0 {
		t.Fatalf("%s %v: no row changed", q, args)
	}
}

func (p *pgTamper) changeData(t *testing.T, w string, seq int64) {
	// One byte: the first '7' of the event's data becomes '8'.
	p.exec(t, `UPDATE events SET data = overlay(data PLACING '\x38'::bytea FROM position('\x37'::bytea IN data) FOR 1)
		WHERE writer = $1 AND seq = $2 AND position('\x37'::bytea IN data) > 0`, w, seq)
}

func (p *pgTamper) deleteEvent(t *testing.T, w string, seq int64) {
	p.exec(t, `DELETE FROM events WHERE writer = $1 AND seq = $2`, w, seq)
}

func (p *pgTamper) swapSeq(t *testing.T, w string, a, b int64) {
	// The key is not deferrable: through a free seq, as by hand.
	const q = `UPDATE events SET seq = $3 WHERE writer = $1 AND seq = $2`
	p.exec(t, q, w, a, -1)
	p.exec(t, q, w, b, a)
	p.exec(t, q, w, -1, b)
}

func (p *pgTamper) deleteTail(t *testing.T, w string, from int64) {
	p.exec(t, `DELETE FROM events WHERE writer = $1 AND seq >= $2`, w, from)
	p.exec(t, `DELETE FROM checkpoints WHERE writer = $1 AND seq >= $2`, w, from)
}

func (p *pgTamper) setMarkThrough(t *testing.T, w string, through int64) {
	p.exec(t, `UPDATE retention_marks SET through = $2 WHERE writer = $1`, w, through)
}

func (p *pgTamper) deleteMark(t *testing.T, w string) {
	p.exec(t, `DELETE FROM retention_marks WHERE writer = $1`, w)
}

func TestTamperPostgres(t *testing.T) { runTamper(t, newPostgresTamper) }

func TestRetentionPostgres(t *testing.T) { runRetention(t, newPostgresTamper) }

// BenchmarkAppendDurablePostgres: 64 appenders, each waiting for its event
// to be durable in PostgreSQL (synchronous_commit on).
func BenchmarkAppendDurablePostgres(b *testing.B) {
	st, err := store.Open(context.Background(), freshPostgres(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchAppend(b, st)
}
