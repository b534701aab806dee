package postgres

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/countersign/countersign/internal/config"
)

// TestUpstreamConnectTimeout: an upstream that accepts the TCP connection
// and then says nothing (a hung server, a black-holing firewall) fails the
// client's login with 08006 after the resource's connect_timeout, not the
// 10 s default: the client's own deadline here is shorter than that.
func TestUpstreamConnectTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // held open, never answered
		}
	}()
	silent := &config.Resource{Name: "pg-silent", Type: "postgres", Address: ln.Addr().String(),
		Database: "x", Username: "x", ConnectTimeout: 300 * time.Millisecond}
	ev := newEnv(t, func(o *Options) {
		next := o.Resource
		o.Resource = func(n string) (*config.Resource, bool) {
			if n == silent.Name {
				return silent, true
			}
			return next(n)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*config.DefaultConnectTimeout/3)
	defer cancel()
	c, err := pgconn.Connect(ctx, ev.url("pg-silent", "require"))
	if err == nil {
		c.Close(ctx)
		t.Fatal("connected to an upstream that never answers")
	}
	if ctx.Err() != nil {
		t.Fatalf("the login waited past the client's deadline (connect_timeout not applied): %v", err)
	}
	pe := pgErr(t, err)
	if pe.Code != "08006" || !strings.Contains(pe.Message, "could not connect") {
		t.Fatalf("got %s %q; want 08006 could not connect", pe.Code, pe.Message)
	}
}
