// Command goproxy is the floor of the benchmarks: a TCP proxy in Go that
// copies bytes between each client and its own upstream connection and
// does nothing else (no parsing, no decision, no recording). It is built
// the way countersign's engines are (a goroutine per direction, Go's
// network poller), so bench/pgbench.sh and bench/mysqlslap.sh can show in
// the same run what any Go proxy costs on the machine before countersign
// does any of its work: the ratio countersign/goproxy is the price of the
// product, goproxy/pgbouncer (or goproxy/direct) the price of the
// runtime.
//
//	goproxy LISTEN_ADDR UPSTREAM_ADDR
//
// It is a benchmark tool: it has no TLS, no limits and no logging.
package main
