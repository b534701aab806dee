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
source "$(dirname "$0")/lib.sh"
N=${1:-30}
DB=cs_approval_bench
PG_PORT=5432
CS_PORT=${CS_PORT:-25442}
API_PORT=${API_PORT:-28453}
CS_DROP_DB=$DB
cs_workdir cs-approval
trap cs_cleanup EXIT

cs_createdb $DB 2>/dev/null
psql -h 127.0.0.1 -p $PG_PORT -U postgres -d $DB -qc "CREATE TABLE approval_bench (i int)" >/dev/null

cs_build
go build -o "$work/approval" ./bench/approval
{
	cs_resource cs-approval
	cat <<YAML
        approvals: 1
        mode: wait
        wait_timeout: 1m
YAML
} | cs_config true
CREATOR=$(cs_token alice bench 1h 2>/dev/null)
APPROVER=$(cs_token bob leads 1h 2>/dev/null)
cs_start

"$work/approval" -n "$N" -api "https://127.0.0.1:$API_PORT" -ca "$work/data/ca.pem" -approver "$APPROVER" \
	-pg "host=127.0.0.1 port=$CS_PORT dbname=cs-approval user=alice password=$CREATOR sslmode=disable"
rows=$(psql -h 127.0.0.1 -p $PG_PORT -U postgres -d $DB -tAc "SELECT count(*) FROM approval_bench")
echo "rows written after approval: $rows of $N"
