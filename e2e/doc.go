// Package e2e holds countersign's end-to-end tests: the real binary, started
// as a separate process per test, between real clients (psql, pgbench, pgx,
// the mariadb client) and the machine's real PostgreSQL (127.0.0.1:5432,
// user postgres, trust) and MariaDB (127.0.0.1:3306, root).
//
// The tests attack the product's promises from the outside: segregation of
// duties, what runs is what was reviewed, record before effect, a
// tamper-evident recording, and tokens never sent in the clear. Each test
// makes its own gateway (own ports, own data dir) and its own throwaway
// upstream database, and removes both when it ends.
//
// A missing PostgreSQL or MariaDB fails the tests (it does not skip them):
// CI starts both. Waits are bounded and say what they waited for; nothing
// asserts on how long something took.
//
// Run: go test ./e2e/ (about two minutes on a 2-core machine). Some tests read
// PostgreSQL's own log file (log_statement = 'all' on their database), which
// needs read access to it (root, or a member of group adm).
package e2e
