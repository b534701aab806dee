#!/usr/bin/env bash
# Point selects, in one run on this machine: directly against MariaDB and
# through `countersign serve` (classification, guard and the durable
# recording at their defaults, SQLite store in the work directory), in
# plaintext on loopback and with TLS. Prints queries/s, mean and p99
# latency, the CPU the gateway spent per query, how many statements each
# durable group commit of the recording carried and its time, and the
# ratio countersign/direct; at the end it verifies the trail. A run
# through bench/goproxy (a Go proxy that only copies bytes) shows what the
# Go runtime alone costs: goproxy/direct is the ceiling of any Go proxy
# on the machine, countersign/goproxy the price of countersign's work.
#
#   bench/mysqlslap.sh [seconds=30] [clients=8]
#
# The load: sysbench's point select (SELECT c FROM sbtest WHERE id = N) on
# a 100,000-row sbtest table, a new random id literal every query, text
# protocol, CLIENTS connections for SECONDS each run, from bench/myload.
# mysqlslap itself cannot go through the gateway: it logs in with latin1
# and has no option to change that, and the gateway only takes utf8mb4
# (its package doc says more). Same client, same flags both ways.
#
# BENCH_DIR puts the gateway's store elsewhere (/dev/shm: what the fsync
# costs); CS_SERVE_FLAGS="--pprof 127.0.0.1:6060" lets you profile it.
#
# Needs the machine's MariaDB on 127.0.0.1:3306 (root, no password), with
# its sequence engine (MariaDB's default) to fill the table.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SECS=${1:-30}
CLIENTS=${2:-8}
ROWS=100000
DB=cs_mybench
MY_PORT=${MY_PORT:-3306}
CS_LISTEN=mysql
CS_PORT=${CS_PORT:-43306}
API_PORT=${API_PORT:-48443}
RESOURCE=cs-mybench
GOPROXY_PORT=${GOPROXY_PORT:-47306}
cs_workdir cs-mybench
trap cs_cleanup EXIT

fail() { echo "mysqlslap.sh: $*" >&2; exit 1; }
mysql --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u root -e 'SELECT 1' >/dev/null ||
	fail "MariaDB does not answer on 127.0.0.1:$MY_PORT as root without a password"
for p in "$CS_PORT" "$API_PORT"; do
	! ss -Hltn "sport = :$p" | grep -q . || fail "port $p is taken; set CS_PORT (MySQL) or API_PORT"
done

# The table: sysbench's sbtest, ROWS rows, filled by MariaDB's sequence
# engine in one statement.
cs_mycreatedb $DB
CS_DROP_MYSQL_DB=$DB
mysql --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u root $DB <<SQL
CREATE TABLE sbtest (id INT PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60));
INSERT INTO sbtest
SELECT seq, FLOOR(1 + RAND() * $ROWS),
       LEFT(CONCAT_WS('-', MD5(seq), MD5(seq + 1), MD5(seq + 2), MD5(seq + 3)), 120),
       LEFT(CONCAT_WS('-', SHA1(seq), SHA1(-seq)), 60)
FROM seq_1_to_$ROWS;
SQL

cs_build
go build -o "$work/myload" ./bench/myload
cs_resource_mysql $RESOURCE | cs_config true
TOKEN=$(cs_token bench bench 2h)
"$work/countersign" ca --config "$work/countersign.yaml" >"$work/ca.pem"
cs_start ${CS_SERVE_FLAGS:-}
kill -0 "$CS_PID" 2>/dev/null || { cat "$work/serve.log" >&2; fail "countersign serve did not start"; }
ss -Hltn "sport = :$CS_PORT" | grep -q . || { cat "$work/serve.log" >&2; fail "countersign does not listen on $CS_PORT"; }

# cpu_ticks PID: user+system CPU of a process, in clock ticks.
cpu_ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# commits: "count sum" of the recording's store appends (one per group
# commit), from countersign's /metrics.
commits() {
	curl -sk "https://127.0.0.1:$API_PORT/metrics" 2>/dev/null |
		awk '/append_events/ && /_count[{ ]/ {c=$2} /append_events/ && /_sum[{ ]/ {s=$2} END {print c+0, s+0}'
}

# run LABEL PID MYLOAD_FLAGS...: one run (PID the gateway's, "" for
# none); prints its queries/s, shows its line on stderr.
run() {
	local label=$1 pid=$2; shift 2
	local t0 t1 c0="" c1="" out n extra=""
	t0=$(cpu_ticks "$pid")
	[ "$pid" = "$CS_PID" ] && c0=$(commits)
	out=$("$work/myload" "$@" -db $DB -clients "$CLIENTS" -rows $ROWS -duration "${SECS}s" 2>"$work/myload.err") ||
		fail "the $label run failed: $(cat "$work/myload.err")${pid:+ (gateway log: $work/serve.log, kept with BENCH_KEEP=1)}"
	t1=$(cpu_ticks "$pid")
	[ "$pid" = "$CS_PID" ] && c1=$(commits)
	# queries=N seconds=S qps=Q mean_ms=M p50_ms=A p99_ms=B max_ms=C
	local -A r
	for kv in $out; do r[${kv%%=*}]=${kv#*=}; done
	n=${r[queries]:-0}
	[ "$n" -gt 0 ] || fail "the $label run sent no query: $out"
	if [ -n "$pid" ]; then
		extra=$(printf '  proxy CPU %4.0f µs/query' "$(echo "($t1 - $t0) * 1000000 / $TICKS / $n" | bc -l)")
	fi
	if [ -n "$c0" ]; then
		read -r k0 s0 <<<"$c0"
		read -r k1 s1 <<<"$c1"
		if [ "$((k1 - k0))" -gt 0 ]; then
			extra+=$(printf '  %5.2f stmts/commit, commit %.2f ms' "$(echo "$n / ($k1 - $k0)" | bc -l)" \
				"$(echo "($s1 - $s0) * 1000 / ($k1 - $k0)" | bc -l)")
		else
			extra+="  (no group commit in /metrics)"
		fi
	fi
	printf '%-16s %8.0f q/s  mean %6.3f ms  p99 %6.3f ms%s\n' "$label" "${r[qps]}" "${r[mean_ms]}" "${r[p99_ms]}" "$extra" >&2
	echo "${r[qps]}"
}

TICKS=$(getconf CLK_TCK)
echo "point select, $CLIENTS clients, ${SECS}s each, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
d=$(run direct "" -addr 127.0.0.1:$MY_PORT -user root)
cp=$(MYLOAD_PASSWORD=$TOKEN run "countersign" "$CS_PID" -addr 127.0.0.1:$CS_PORT -user $RESOURCE)
go build -o "$work/goproxy" ./bench/goproxy
"$work/goproxy" 127.0.0.1:$GOPROXY_PORT 127.0.0.1:$MY_PORT &
goproxy_pid=$!
pids+=($goproxy_pid)
wait_listen $GOPROXY_PORT
g=$(run goproxy "$goproxy_pid" -addr 127.0.0.1:$GOPROXY_PORT -user root)
ct=$(MYLOAD_PASSWORD=$TOKEN run "countersign tls" "$CS_PID" -addr 127.0.0.1:$CS_PORT -user $RESOURCE -ca "$work/ca.pem")
printf 'countersign/direct %.2f (tls %.2f)  goproxy/direct %.2f  countersign/goproxy %.2f  load %s\n' \
	"$(echo "$cp / $d" | bc -l)" "$(echo "$ct / $d" | bc -l)" "$(echo "$g / $d" | bc -l)" "$(echo "$cp / $g" | bc -l)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" >&2
# A clean shutdown signs the chain's end, so the trail verifies whole.
kill -TERM "$CS_PID" 2>/dev/null || true
wait "$CS_PID" 2>/dev/null || true
"$work/countersign" audit verify --config "$work/countersign.yaml" >&2 || fail "the trail does not verify"
