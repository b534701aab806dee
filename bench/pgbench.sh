#!/usr/bin/env bash
# pgbench select-only, in one run on this machine: directly against
# PostgreSQL, through countersign (classification, guard and recording at
# their defaults) with TLS and in plaintext on loopback, and through
# pgbouncer (session mode, plaintext), and through bench/goproxy (a Go
# proxy that only copies bytes: what the Go runtime alone costs). Prints
# tps, mean latency, the CPU the proxy spent per statement, and the ratios
# countersign/direct, countersign/pgbouncer, goproxy/pgbouncer and
# countersign/goproxy. For countersign it also prints how many
# statements each durable group commit of the recording carried.
#
#   bench/pgbench.sh [seconds=30] [clients=8]
#
# BENCH_DIR puts the gateway's store elsewhere (/dev/shm: what the fsync
# costs); CS_SERVE_FLAGS="--pprof 127.0.0.1:6060" lets you profile it.
#
# Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust) and pgbouncer
# (installed from Debian when missing).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SECS=${1:-30}
CLIENTS=${2:-8}
THREADS=2
DB=cs_bench
PG_PORT=5432
CS_PORT=${CS_PORT:-25432}
API_PORT=${API_PORT:-28443}
BOUNCER_PORT=${BOUNCER_PORT:-26432}
GOPROXY_PORT=${GOPROXY_PORT:-27432}
# The work directory (store, logs) is removed at the end: a 30 s run leaves
# about 400 MB of trail. BENCH_KEEP=1 keeps it for a look.
cs_workdir cs-bench
trap cs_cleanup EXIT

if ! command -v pgbouncer >/dev/null; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi

cs_createdb $DB
pgbench -h 127.0.0.1 -p $PG_PORT -U postgres -i -s 10 -q $DB >/dev/null 2>&1

cs_build
# pgbouncer is measured in plaintext, so countersign is too (beside TLS).
cs_resource cs-bench | cs_config true
TOKEN=$(cs_token bench bench 2h)
cs_start ${CS_SERVE_FLAGS:-}

cat > "$work/pgbouncer.ini" <<INI
[databases]
$DB = host=127.0.0.1 port=$PG_PORT dbname=$DB user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
unix_socket_dir =
INI
echo '"postgres" ""' > "$work/userlist.txt"
chown -R postgres "$work" 2>/dev/null || true
runuser -u postgres -- pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
pids+=($!)
wait_port $BOUNCER_PORT
bouncer_pid=$(cat "$work/pgbouncer.pid" 2>/dev/null || true)

go build -o "$work/goproxy" ./bench/goproxy
"$work/goproxy" 127.0.0.1:$GOPROXY_PORT 127.0.0.1:$PG_PORT &
goproxy_pid=$!
pids+=($goproxy_pid)
wait_port $GOPROXY_PORT

# cpu_ticks PID: user+system CPU of a process, in clock ticks.
cpu_ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# commits: "count sum" of the recording's store appends (one per group
# commit), from countersign's /metrics.
commits() {
	curl -sk "https://127.0.0.1:$API_PORT/metrics" 2>/dev/null |
		awk '/append_events/ && /_count[{ ]/ {c=$2} /append_events/ && /_sum[{ ]/ {s=$2} END {print c+0, s+0}'
}

run() { # label, mode, proxy pid ("" for none), connection args...
	local label=$1 mode=$2 pid=$3; shift 3
	local out t0 t1 c0 c1
	t0=$(cpu_ticks "$pid")
	[ "$pid" = "$CS_PID" ] && c0=$(commits)
	out=$(pgbench -n -S -M "$mode" -c "$CLIENTS" -j $THREADS -T "$SECS" "$@" 2>&1)
	t1=$(cpu_ticks "$pid")
	[ "$pid" = "$CS_PID" ] && c1=$(commits)
	local tps lat n extra=""
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
	lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
	n=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	if [ -z "$tps" ]; then echo "$label $mode failed:" >&2; echo "$out" >&2; exit 1; fi
	if [ -n "$pid" ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
		extra=$(printf '  proxy CPU %5.0f µs/stmt' "$(echo "($t1 - $t0) * 1000000 / $TICKS / $n" | bc -l)")
	fi
	if [ -n "${c1:-}" ] && [ -n "$n" ]; then
		read -r k0 s0 <<<"$c0"
		read -r k1 s1 <<<"$c1"
		if [ "$((k1 - k0))" -gt 0 ]; then
			extra+=$(printf '  %5.2f stmts/commit, commit %.2f ms' "$(echo "$n / ($k1 - $k0)" | bc -l)" \
				"$(echo "($s1 - $s0) * 1000 / ($k1 - $k0)" | bc -l)")
		fi
	fi
	printf '%-16s %-9s %10s tps %8s ms%s\n' "$label" "$mode" "$tps" "$lat" "$extra" >&2
	echo "$tps"
}

TICKS=$(getconf CLK_TCK)
echo "pgbench -S, $CLIENTS clients, ${SECS}s each, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for mode in simple prepared; do
	d=$(run direct "$mode" "" -h 127.0.0.1 -p $PG_PORT -U postgres $DB)
	ct=$(PGPASSWORD=$TOKEN PGSSLMODE=require run "countersign tls" "$mode" "$CS_PID" -h 127.0.0.1 -p $CS_PORT -U bench cs-bench)
	cp=$(PGPASSWORD=$TOKEN PGSSLMODE=disable run "countersign" "$mode" "$CS_PID" -h 127.0.0.1 -p $CS_PORT -U bench cs-bench)
	b=$(run pgbouncer "$mode" "$bouncer_pid" -h 127.0.0.1 -p $BOUNCER_PORT -U postgres $DB)
	g=$(run goproxy "$mode" "$goproxy_pid" -h 127.0.0.1 -p $GOPROXY_PORT -U postgres $DB)
	printf '%-9s countersign/direct %.2f (tls %.2f)  countersign/pgbouncer %.2f (tls %.2f)\n' "$mode" \
		"$(echo "$cp / $d" | bc -l)" "$(echo "$ct / $d" | bc -l)" \
		"$(echo "$cp / $b" | bc -l)" "$(echo "$ct / $b" | bc -l)" >&2
	printf '%-9s goproxy/pgbouncer %.2f  countersign/goproxy %.2f\n' "$mode" \
		"$(echo "$g / $b" | bc -l)" "$(echo "$cp / $g" | bc -l)" >&2
done
# A clean shutdown signs the chain's end, so the trail verifies whole.
kill -TERM "$CS_PID" 2>/dev/null || true
wait "$CS_PID" 2>/dev/null || true
"$work/countersign" audit verify --config "$work/countersign.yaml" >&2 || true
