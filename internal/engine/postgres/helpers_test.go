package postgres

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5"
)

// classifier is the real one, shared by the tests as by a gateway.
var classifier = sqlkind.NewPostgres(sqlkind.PostgresOptions{})

// env is one engine in front of a test database.
type env struct {
	addr string
	g    *enginetest.Guard
	rec  *enginetest.Recorder
	e    *Engine
	res  map[string]*config.Resource
}

func newEnv(t testing.TB, tweak func(*Options)) *env {
	t.Helper()
	ev := &env{g: &enginetest.Guard{}, rec: &enginetest.Recorder{}, res: map[string]*config.Resource{}}
	ev.res["pg-test"] = &config.Resource{Name: "pg-test", Type: "postgres", Address: "127.0.0.1:5432", Database: testDB, Username: "postgres", Password: "not-used-with-trust"}
	ev.res["pg-down"] = &config.Resource{Name: "pg-down", Type: "postgres", Address: closedPort(t), Database: "x", Username: "x"}
	if scram.port != 0 {
		for _, u := range []string{scramRole, md5Role} {
			ev.res["pg-"+u] = &config.Resource{Name: "pg-" + u, Type: "postgres", Address: fmt.Sprintf("127.0.0.1:%d", scram.port), Database: "postgres", Username: u, Password: scram.passwords[u]}
		}
	}
	o := Options{
		TLS:      serverTLS,
		Resource: func(n string) (*config.Resource, bool) { r, ok := ev.res[n]; return r, ok },
		Auth:     enginetest.Auth{}, Guard: ev.g, Recorder: ev.rec, Classifier: classifier,
		ReplicaID: 7,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ev.addr, ev.e = enginetest.Serve(t, e), e
	return ev
}

func (ev *env) url(res, sslmode string) string {
	return fmt.Sprintf("postgres://alice:%s@%s/%s?sslmode=%s", enginetest.Token, ev.addr, res, sslmode)
}

func (ev *env) connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, ev.url("pg-test", "require"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}
