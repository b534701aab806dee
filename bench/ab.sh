#!/usr/bin/env bash
# A/B of two gateway builds under pgbench -S: both serve at once (each its
# own store, port and API port), and pgbench alternates between them a few
# seconds at a time, so the load of whatever else runs on the machine falls
# on both alike. Prints, per round and side, tps and the gateway's CPU per
# statement (user+system from /proc/PID/stat over the transactions), and
# the mean of each side at the end.
#
#   bench/ab.sh BINARY_A BINARY_B [rounds=3] [seconds=10] [clients=8]
#
# A_ENV / B_ENV: environment for one side ("GOMAXPROCS=3"); MODE: pgbench
# protocol (prepared); BENCH_DIR: where the stores live (/tmp, on disk).
# Build the binaries first, e.g. `go build -o /tmp/cs-new ./cmd/countersign`
# (this script does not build: one side is usually an older tree).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-3}
SECS=${4:-10}
CLIENTS=${5:-8}
MODE=${MODE:-prepared}
DB=cs_ab
PG_PORT=5432
cs_workdir cs-ab
CS_DROP_DB=$DB
trap cs_cleanup EXIT

cs_createdb $DB
pgbench -h 127.0.0.1 -p $PG_PORT -U postgres -i -s 10 -q $DB >/dev/null 2>&1

# side NAME BINARY CS_PORT API_PORT ENV: a work directory, config, token
# and a running gateway for one side; sets PID_<NAME> and TOKEN_<NAME>.
side() {
	local name=$1 bin=$2 env=$4
	local top=$work
	work=$top/$name
	mkdir -p "$work"
	ln -s "$bin" "$work/countersign"
	CS_PORT=$3 API_PORT=$(($3 + 1000))
	cs_resource cs-ab | cs_config true
	printf -v "TOKEN_$name" '%s' "$(cs_token bench bench 2h)"
	# shellcheck disable=SC2086 # ENV is word-split on purpose
	env $env "$work/countersign" serve --config "$work/countersign.yaml" >"$work/serve.log" 2>&1 &
	printf -v "PID_$name" '%s' "$!"
	pids+=("$!")
	wait_port "$CS_PORT"
	work=$top
}
side A "$A" 25501 "${A_ENV:-}"
side B "$B" 25502 "${B_ENV:-}"

TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# round NAME PORT: one pgbench run; prints "tps µs/stmt".
round() {
	local pid token t0 t1 out tps n
	pid=PID_$1 token=TOKEN_$1
	t0=$(cpu_ticks "${!pid}")
	out=$(PGPASSWORD=${!token} PGSSLMODE=disable pgbench -n -S -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECS" \
		-h 127.0.0.1 -p "$2" -U bench cs-ab 2>&1)
	t1=$(cpu_ticks "${!pid}")
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
	n=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	if [ -z "$tps" ] || [ -z "$n" ] || [ "$n" -eq 0 ]; then echo "$1 failed: $out" >&2; exit 1; fi
	printf '%.0f %.1f\n' "$tps" "$(echo "($t1 - $t0) * 1000000 / $TICKS / $n" | bc -l)"
}

echo "A=$A ${A_ENV:-}" >&2
echo "B=$B ${B_ENV:-}" >&2
echo "pgbench -S -M $MODE -c $CLIENTS, ${SECS}s a round, $(nproc) cores, store in ${BENCH_DIR:-/tmp}" >&2
sa=() sb=()
for r in $(seq 1 "$ROUNDS"); do
	# Alternate which side goes first, so a trend in the load cancels too.
	if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
	for s in $order; do
		port=25501; [ "$s" = B ] && port=25502
		load=$(cut -d' ' -f1 /proc/loadavg)
		res=$(round "$s" "$port")
		printf 'round %d %s  %6s tps  %6s µs/stmt  (load %s)\n' "$r" "$s" $res "$load" >&2
		if [ "$s" = A ]; then sa+=("$res"); else sb+=("$res"); fi
	done
done
mean() { printf '%s\n' "$@" | awk '{t+=$1; c+=$2; n++} END {printf "%.0f tps  %.1f µs/stmt", t/n, c/n}'; }
echo "mean A: $(mean "${sa[@]}")" >&2
echo "mean B: $(mean "${sb[@]}")" >&2
