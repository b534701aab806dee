// Command myload is bench/mysqlslap.sh's load generator: sysbench's point
// select (SELECT c FROM sbtest WHERE id = N) from a fixed number of MySQL
// connections for a fixed time, a new random id literal in every query,
// sent in the text protocol (COM_QUERY), each connection waiting for its
// result before it sends the next.
//
// It exists because mysqlslap cannot be pointed through countersign:
// MariaDB's mysqlslap has no --default-character-set and logs in with
// latin1, which the gateway refuses (it reads statements as utf8mb4, see
// DESIGN.md invariant 8), and a query computing its id with RAND() makes
// MariaDB scan the table instead of reading one row.
//
// The same binary and flags drive both sides of a comparison, directly
// against MariaDB and through the gateway; only the address, the user and
// the password change. Connections are opened and checked before the clock
// starts, so logins are not measured. The password comes from the
// environment (MYLOAD_PASSWORD), not the command line, where ps would show
// a token. It prints one line:
//
//	queries=N seconds=S qps=Q mean_ms=M p50_ms=A p99_ms=B max_ms=C
//
// and exits non-zero, saying why, when a connection or a query fails.
//
//	go build -o myload ./bench/myload
//	MYLOAD_PASSWORD=$TOKEN ./myload -addr 127.0.0.1:43306 -user cs-mybench -db cs_mybench -clients 8 -duration 30s [-ca gateway-ca.pem]
package main
