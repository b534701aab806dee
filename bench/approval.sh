#!/usr/bin/env bash
# Approval-to-execution latency: a write held by a `mode: wait` policy is
# approved by a second identity through the API; prints how long the client
# then waits for its result (median, p95, max over N writes). The waiting
# session is released by notification, so the target is well under 100 ms.
#
#   bench/approval.sh [writes=30]
#
# Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
N=${1:-30}
DB=cs_approval_bench
PG_PORT=5432
CS_PORT=${CS_PORT:-25442}
API_PORT=${API_PORT:-28453}
work=$(mktemp -d "${BENCH_DIR:-/tmp}/cs-approval.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
	psql -h 127.0.0.1 -p $PG_PORT -U postgres -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql -h 127.0.0.1 -p $PG_PORT -U postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
psql -h 127.0.0.1 -p $PG_PORT -U postgres -d $DB -qc "CREATE TABLE approval_bench (i int)" >/dev/null

go build -o "$work/countersign" ./cmd/countersign
go build -o "$work/approval" ./bench/approval
cat > "$work/countersign.yaml" <<YAML
listen:
  api: 127.0.0.1:$API_PORT
  postgres: 127.0.0.1:$CS_PORT
  allow_plaintext_loopback: true
store: sqlite://$work/data/countersign.db
identity:
  roles:
    bench: [creator]
    leads: [approver]
resources:
  - name: cs-approval
    type: postgres
    address: 127.0.0.1:$PG_PORT
    database: $DB
    username: postgres
    policy:
      access: [bench]
      review:
        kinds: [write, schema, privilege, admin, unknown]
        approvers: [leads]
        approvals: 1
        mode: wait
        wait_timeout: 1m
YAML
CREATOR=$("$work/countersign" token issue --config "$work/countersign.yaml" --user alice --groups bench --ttl 1h 2>/dev/null)
APPROVER=$("$work/countersign" token issue --config "$work/countersign.yaml" --user bob --groups leads --ttl 1h 2>/dev/null)
"$work/countersign" serve --config "$work/countersign.yaml" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p $CS_PORT -q && break; sleep 0.2; done

"$work/approval" -n "$N" -api "https://127.0.0.1:$API_PORT" -ca "$work/data/ca.pem" -approver "$APPROVER" \
	-pg "host=127.0.0.1 port=$CS_PORT dbname=cs-approval user=alice password=$CREATOR sslmode=disable"
rows=$(psql -h 127.0.0.1 -p $PG_PORT -U postgres -d $DB -tAc "SELECT count(*) FROM approval_bench")
echo "rows written after approval: $rows of $N"
