package postgres

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/engine/enginetest"
)

func TestBatchWithDeniedExecute(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	ev.g.SetRule(enginetest.DenyIf("forbidden"))
	c := ev.connect(t)
	ctx := context.Background()
	tbl := "b_" + randHex(3)
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (id int)"); err != nil {
		t.Fatal(err)
	}
	// prepared statements, then a pipeline whose third statement is refused:
	// the inserts before it roll back with the implicit transaction, as the
	// client believes, and the one after it is skipped.
	if _, err := c.Prepare(ctx, "ins", "INSERT INTO "+tbl+" VALUES ($1)"); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	b.Queue("INSERT INTO "+tbl+" VALUES ($1)", 1)
	b.Queue("ins", 2)
	b.Queue("SELECT 'forbidden', $1::int", 3)
	b.Queue("ins", 4)
	err := c.SendBatch(ctx, b).Close()
	if pe := pgErr(t, err); pe.Code != "42501" {
		t.Fatalf("got %s %s", pe.Code, pe.Message)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows after a refused pipeline (%v); want 0: the upstream did not roll back", n, err)
	}
	// an allowed batch goes through
	b = &pgx.Batch{}
	for i := range 50 {
		b.Queue("ins", i)
	}
	if err := c.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil || n != 50 {
		t.Fatalf("%d rows, %v", n, err)
	}
}

func TestCopyBothWays(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	tbl := "c_" + randHex(3)
	if _, err := c.Exec(ctx, "CREATE TABLE "+tbl+" (id int, v text)"); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 5000)
	for i := range rows {
		rows[i] = []any{int32(i), strings.Repeat("v", 50)}
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{tbl}, []string{"id", "v"}, pgx.CopyFromRows(rows))
	if err != nil || n != 5000 {
		t.Fatalf("copied %d, %v", n, err)
	}
	var sb strings.Builder
	tag, err := c.PgConn().CopyTo(ctx, &sb, "COPY "+tbl+" TO STDOUT")
	if err != nil || tag.RowsAffected() != 5000 || strings.Count(sb.String(), "\n") != 5000 {
		t.Fatalf("copy out: %v %v, %d lines", tag, err, strings.Count(sb.String(), "\n"))
	}
	// CopyFail: the client aborts; nothing is stored and the session goes on
	_, err = c.PgConn().CopyFrom(ctx, &failingReader{}, "COPY "+tbl+" FROM STDIN")
	if err == nil {
		t.Fatal("an aborted COPY succeeded")
	}
	var cnt int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&cnt); err != nil || cnt != 5000 {
		t.Fatalf("%d rows, %v", cnt, err)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		return 0, io.ErrClosedPipe
	}
	r.n++
	return copy(p, "1\tx\n"), nil
}

func TestMalformedMessageEndsOnlyThatSession(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.AllowPlaintextLoopback = true; o.Limits.MaxMessageBytes = 1 << 20 })
	other := ev.connect(t)
	ctx := context.Background()
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"oversized", []byte{'Q', 0x10, 0, 0, 0}, "limits.max_message_bytes"},
		{"unknown type", []byte{'z', 0, 0, 0, 4}, "invalid message"},
		{"bad length", []byte{'Q', 0, 0, 0, 1}, "invalid message"},
		{"unterminated query", []byte{'Q', 0, 0, 0, 7, 'a', 'b', 'c'}, "invalid message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := pgx.Connect(ctx, ev.url("pg-test", "disable"))
			if err != nil {
				t.Fatal(err)
			}
			nc := c.PgConn().Conn()
			if _, err := nc.Write(tt.raw); err != nil {
				t.Fatal(err)
			}
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.ReadAll(nc)
			if !strings.Contains(string(got), "08P01") || !strings.Contains(string(got), tt.want) {
				t.Fatalf("got %q", got)
			}
		})
	}
	var n int
	if err := other.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("another session was disturbed: %v", err)
	}
	waitFor(t, func() bool { return ev.closedFor("message") == len(tests) })
}

func TestStartupTimeout(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.Limits.StartupTimeout = 200 * time.Millisecond })
	nc, err := net.Dial("tcp", ev.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatalf("the gateway did not close a silent connection: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.Limits.IdleTimeout = 300 * time.Millisecond })
	c := ev.connect(t)
	ctx := context.Background()
	// a statement running longer than the idle timeout is not cut
	if _, err := c.Exec(ctx, "SELECT pg_sleep(0.6)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return ev.e.activeSessions() == 0 })
	reasons := ev.rec.OfType("session.close")
	if len(reasons) != 1 || !strings.Contains(reasons[0].Data.(map[string]any)["reason"].(string), "idle_timeout") {
		t.Fatalf("session.close: %+v", reasons)
	}
}
