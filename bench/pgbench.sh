#!/usr/bin/env bash
# pgbench select-only, in one run on this machine: directly against
# PostgreSQL, through countersign (classification, guard and recording at
# their defaults), and through pgbouncer (session mode). Prints tps, mean
# latency and the ratios countersign/direct and countersign/pgbouncer.
#
#   bench/pgbench.sh [seconds=30] [clients=8]
#
# Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust) and pgbouncer
# (installed from Debian when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
SECS=${1:-30}
CLIENTS=${2:-8}
THREADS=2
DB=cs_bench
PG_PORT=5432
CS_PORT=${CS_PORT:-25432}
API_PORT=${API_PORT:-28443}
BOUNCER_PORT=${BOUNCER_PORT:-26432}
work=$(mktemp -d "${BENCH_DIR:-/tmp}/cs-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

if ! command -v pgbouncer >/dev/null; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi

psql -h 127.0.0.1 -p $PG_PORT -U postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
pgbench -h 127.0.0.1 -p $PG_PORT -U postgres -i -s 10 -q $DB >/dev/null 2>&1

go build -o "$work/countersign" ./cmd/countersign
cat > "$work/countersign.yaml" <<YAML
listen:
  api: 127.0.0.1:$API_PORT
  postgres: 127.0.0.1:$CS_PORT
store: sqlite://$work/data/countersign.db
identity:
  roles:
    bench: [creator]
    leads: [approver]
resources:
  - name: cs-bench
    type: postgres
    address: 127.0.0.1:$PG_PORT
    database: $DB
    username: postgres
    policy:
      access: [bench]
      review:
        kinds: [write, schema, privilege, admin, unknown]
        approvers: [leads]
YAML
TOKEN=$("$work/countersign" token issue --config "$work/countersign.yaml" --user bench --groups bench --ttl 2h)
"$work/countersign" serve --config "$work/countersign.yaml" ${CS_SERVE_FLAGS:-} >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p $CS_PORT -q && break; sleep 0.2; done

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
for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p $BOUNCER_PORT -q && break; sleep 0.2; done

run() { # label, mode, connection args...
	local label=$1 mode=$2; shift 2
	local out
	out=$(pgbench -n -S -M "$mode" -c "$CLIENTS" -j $THREADS -T "$SECS" "$@" 2>&1)
	local tps lat
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
	lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
	if [ -z "$tps" ]; then echo "$label $mode failed:" >&2; echo "$out" >&2; exit 1; fi
	printf '%-12s %-9s %10s tps %8s ms\n' "$label" "$mode" "$tps" "$lat" >&2
	echo "$tps"
}

echo "pgbench -S, $CLIENTS clients, ${SECS}s each, $(nproc) cores" >&2
for mode in simple prepared; do
	d=$(run direct "$mode" -h 127.0.0.1 -p $PG_PORT -U postgres $DB)
	c=$(PGPASSWORD=$TOKEN PGSSLMODE=require run countersign "$mode" -h 127.0.0.1 -p $CS_PORT -U bench cs-bench)
	b=$(run pgbouncer "$mode" -h 127.0.0.1 -p $BOUNCER_PORT -U postgres $DB)
	printf '%-9s countersign/direct %.2f  countersign/pgbouncer %.2f\n' "$mode" \
		"$(echo "$c / $d" | bc -l)" "$(echo "$c / $b" | bc -l)" >&2
done
"$work/countersign" audit verify --config "$work/countersign.yaml" >&2 || true
