# bench/lib.sh: what the bench scripts share, sourced by each (not run):
# the repository root as working directory, a work directory, building the
# binary, its config, tokens, starting `countersign serve` and cleaning up.
#
# A script sets set -euo pipefail, sources this file, sets DB, PG_PORT,
# CS_PORT and API_PORT, calls cs_workdir and installs `trap cs_cleanup EXIT`.
# Everything a run makes lives in $work, removed at the end (BENCH_KEEP=1
# keeps it for a look); BENCH_DIR puts it elsewhere than /tmp.
#
# A MySQL script sets CS_LISTEN=mysql (CS_PORT is then the gateway's MySQL
# listener and the only one), MY_PORT (the upstream MariaDB) and uses
# cs_mycreatedb, cs_resource_mysql and CS_DROP_MYSQL_DB; unset, nothing
# changes for the PostgreSQL scripts.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"

# cs_workdir PREFIX: makes $work and starts the list of processes (pids)
# that cs_cleanup ends.
cs_workdir() {
	work=$(mktemp -d "${BENCH_DIR:-/tmp}/$1.XXXXXX")
	pids=()
}

# cs_cleanup ends the processes the script started, drops $CS_DROP_DB (set
# by a script whose database is its own; $CS_DROP_MYSQL_DB on MariaDB) and
# removes $work.
cs_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${CS_DROP_DB:-}" ]; then
		psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "DROP DATABASE IF EXISTS $CS_DROP_DB" >/dev/null 2>&1 || true
	fi
	if [ -n "${CS_DROP_MYSQL_DB:-}" ]; then
		mysql --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u root -e "DROP DATABASE IF EXISTS $CS_DROP_MYSQL_DB" >/dev/null 2>&1 || true
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

# cs_createdb DB: a fresh, empty database on PostgreSQL.
cs_createdb() {
	psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
}

# cs_mycreatedb DB: a fresh, empty database on MariaDB (root, no password).
cs_mycreatedb() {
	mysql --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u root -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1"
}

# cs_build: the gateway as $work/countersign.
cs_build() {
	go build -o "$work/countersign" ./cmd/countersign
}

# cs_config PLAINTEXT: writes $work/countersign.yaml, listening on CS_PORT
# (for PostgreSQL clients, or MySQL ones with CS_LISTEN=mysql)
# and API_PORT with allow_plaintext_loopback PLAINTEXT (true|false), a
# SQLite store in $work, role bench for creators and leads for approvers;
# the resources list is read from stdin (cs_resource gives the common part).
cs_config() {
	{
		cat <<YAML
listen:
  api: 127.0.0.1:$API_PORT
  ${CS_LISTEN:-postgres}: 127.0.0.1:$CS_PORT
  allow_plaintext_loopback: $1
store: sqlite://$work/data/countersign.db
identity:
  roles:
    bench: [creator]
    leads: [approver]
resources:
YAML
		cat
	} >"$work/countersign.yaml"
}

# cs_resource NAME: a PostgreSQL resource on $DB that group bench may use
# and leads review; what a script adds goes on inside its review map.
cs_resource() { cs_resource_of "$1" postgres "$PG_PORT" postgres; }

# cs_resource_mysql NAME: a MySQL resource on MariaDB's database $DB (as
# root) that group bench may use and leads review; clients log in with
# NAME as their user.
cs_resource_mysql() { cs_resource_of "$1" mysql "$MY_PORT" root; }

# cs_resource_of NAME TYPE PORT USER: what both resources share.
cs_resource_of() {
	cat <<YAML
  - name: $1
    type: $2
    address: 127.0.0.1:$3
    database: $DB
    username: $4
    policy:
      access: [bench]
      review:
        kinds: [write, schema, privilege, admin, unknown]
        approvers: [leads]
YAML
}

# cs_token USER GROUPS TTL: prints a token for a local identity.
cs_token() {
	"$work/countersign" token issue --config "$work/countersign.yaml" --user "$1" --groups "$2" --ttl "$3"
}

# cs_start [serve flags...]: runs `countersign serve` (log in
# $work/serve.log), sets CS_PID and waits for its PostgreSQL port (its
# MySQL port with CS_LISTEN=mysql).
cs_start() {
	"$work/countersign" serve --config "$work/countersign.yaml" "$@" >"$work/serve.log" 2>&1 &
	CS_PID=$!
	pids+=("$CS_PID")
	if [ "${CS_LISTEN:-postgres}" = mysql ]; then wait_listen "$CS_PORT"; else wait_port "$CS_PORT"; fi
}

# wait_port PORT: waits (10 s at most) until a PostgreSQL server answers
# on the loopback port; the run that follows says what failed if none does.
wait_port() {
	for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p "$1" -q && break; sleep 0.2; done
}

# wait_listen PORT: waits (10 s at most) until something listens on the
# loopback TCP port, without connecting (a probe would be a failed login
# in the gateway's log and recording).
wait_listen() {
	for _ in $(seq 1 50); do ss -Hltn "sport = :$1" | grep -q . && break; sleep 0.2; done
}
