package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

type options struct {
	addr, user, db, ca string
	clients, rows      int
	duration           time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:3306", "server `host:port`")
	flag.StringVar(&o.user, "user", "root", "user (through countersign: the resource's name)")
	flag.StringVar(&o.db, "db", "", "schema holding the sbtest table")
	flag.StringVar(&o.ca, "ca", "", "PEM `file` of the CA to verify the server against; TLS only when set")
	flag.IntVar(&o.clients, "clients", 8, "connections, each with one query outstanding")
	flag.IntVar(&o.rows, "rows", 100000, "ids are drawn from 1..rows")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long the load runs")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "myload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.clients < 1 || o.rows < 1 || o.duration <= 0 {
		return errors.New("-clients, -rows and -duration must be positive")
	}
	cfg, err := config(o)
	if err != nil {
		return err
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(o.clients)
	db.SetMaxIdleConns(o.clients)
	conns, err := open(db, o.clients)
	if err != nil {
		return err
	}
	lat, elapsed, err := load(conns, o)
	if err != nil {
		return err
	}
	report(lat, elapsed)
	return nil
}

// config: the driver's settings; the same for direct and gateway runs but
// for address, user and password. The cleartext plugin is allowed because
// the gateway asks for the token with it (MariaDB, asked by no one, ignores it).
func config(o options) (*mysql.Config, error) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.DBName = "tcp", o.addr, o.user, o.db
	cfg.Passwd = os.Getenv("MYLOAD_PASSWORD")
	cfg.AllowCleartextPasswords = true
	if o.ca == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(o.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", o.ca)
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, err
	}
	cfg.TLS = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	return cfg, nil
}

// open takes n connections out of the pool and checks each with a query,
// so that no login happens while the clock runs.
func open(db *sql.DB, n int) ([]*sql.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conns := make([]*sql.Conn, n)
	for i := range conns {
		c, err := db.Conn(ctx)
		if err == nil {
			err = c.PingContext(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns[i] = c
	}
	return conns, nil
}

// load runs every connection until the deadline and returns each query's
// latency and the time from the start to the last connection's end.
func load(conns []*sql.Conn, o options) ([]time.Duration, time.Duration, error) {
	start := time.Now()
	deadline := start.Add(o.duration)
	lats := make([][]time.Duration, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats[i], errs[i] = client(c, o.rows, deadline)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := firstErr(errs); err != nil {
		return nil, 0, err
	}
	return slices.Concat(lats...), elapsed, nil
}

// firstErr: the first connection's error and how many more failed (all
// of them at once, typically, when the server goes away).
func firstErr(errs []error) error {
	var first error
	n := 0
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w (and %d more connections failed)", first, n-1)
	}
	return first
}

// client sends point selects on one connection until the deadline. The
// query is built as text with the id as a literal: no arguments, so the
// driver sends COM_QUERY, as sysbench's default and mysqlslap do.
func client(c *sql.Conn, rows int, deadline time.Time) ([]time.Duration, error) {
	const q = "SELECT c FROM sbtest WHERE id="
	lat := make([]time.Duration, 0, 1<<16)
	ctx := context.Background()
	var s string
	for {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return lat, nil
		}
		id := 1 + rand.IntN(rows)
		if err := c.QueryRowContext(ctx, q+strconv.Itoa(id)).Scan(&s); err != nil {
			return lat, fmt.Errorf("id %d: %w", id, err)
		}
		lat = append(lat, time.Since(t0))
	}
}

func report(lat []time.Duration, elapsed time.Duration) {
	if len(lat) == 0 {
		fmt.Println("queries=0")
		return
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	fmt.Printf("queries=%d seconds=%.3f qps=%.1f mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		len(lat), elapsed.Seconds(), float64(len(lat))/elapsed.Seconds(), ms(sum/time.Duration(len(lat))),
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1]))
}
