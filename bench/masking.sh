#!/usr/bin/env bash
# Masking cost, in one run on this machine: a 1M-row, 5-column SELECT
# (id int, email, ssn, note, city) read with psql directly from PostgreSQL,
# through countersign on a resource without masking rules, and through
# countersign on a resource whose rules mask 2 columns (email: partial,
# ssn: redact) with detectors on (they scan every other value). Prints the
# best of REPS rounds (the three take turns), the ratios to direct, the
# gateway CPU a run, and countersign's peak resident memory (VmHWM)
# over the whole run.
#
#   bench/masking.sh [rows=1000000] [reps=3]
#
# Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust) and psql.
# CS_SSLMODE=disable (default require) sends the token in plaintext over
# loopback (allow_plaintext_loopback), which takes TLS out of the ratio.
# CS_PROFILE=FILE writes a 10 s CPU profile of the gateway taken while the
# runs go on (serve --pprof on 127.0.0.1:$PPROF_PORT).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROWS=${1:-1000000}
REPS=${2:-3}
DB=cs_bench_mask
PG_PORT=5432
CS_PORT=${CS_PORT:-25442}
API_PORT=${API_PORT:-28453}
PPROF_PORT=${PPROF_PORT:-26062}
SSLMODE=${CS_SSLMODE:-require}
CS_DROP_DB=$DB
cs_workdir cs-bench-mask
trap cs_cleanup EXIT

cs_createdb $DB
psql -h 127.0.0.1 -p $PG_PORT -U postgres -q -v ON_ERROR_STOP=1 $DB >/dev/null <<SQL
CREATE TABLE people (id int PRIMARY KEY, email text, ssn text, note text, city text);
INSERT INTO people
SELECT i,
       'user' || i || '@example.com',
       to_char(100 + i % 600, 'FM000') || '-' || to_char(10 + i % 89, 'FM00') || '-' || to_char(1000 + i % 8999, 'FM0000'),
       'order ' || i || ' shipped, ' || (i % 7) || ' parcels, signed at the door',
       (ARRAY['Lisbon', 'Oslo', 'Austin', 'Osaka', 'Lagos'])[1 + i % 5]
FROM generate_series(1, $ROWS) AS i;
VACUUM ANALYZE people;
SQL

cs_build
plaintext=false
if [ "$SSLMODE" = disable ]; then plaintext=true; fi
{
	cs_resource cs-plain
	cs_resource cs-masked
	cat <<YAML
      masking:
        - columns: ["*.email"]
          strategy: partial
          keep_last: 4
        - columns: ["public.people.ssn"]
          strategy: redact
          filter: deny
        - detectors: [email, credit_card, us_ssn, iban, phone, ipv4, jwt, aws_access_key, api_token]
          strategy: redact
YAML
} | cs_config $plaintext
TOKEN=$(cs_token bench bench 2h)
serve_flags=()
if [ -n "${CS_PROFILE:-}" ]; then serve_flags=(--pprof "127.0.0.1:$PPROF_PORT"); fi
cs_start "${serve_flags[@]}"

QUERY="SELECT id, email, ssn, note, city FROM people"

# timed: wall seconds of one run of the query; the rows go to /dev/null
# after psql has received them all.
timed() {
	local s e
	s=$(date +%s%N)
	psql -X -At -v ON_ERROR_STOP=1 -c "$QUERY" -o /dev/null "$@"
	e=$(date +%s%N)
	echo "($e - $s) / 1000000000" | bc -l
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# The masked result must really be masked: a raw address or SSN fails the run.
sample=$(PGPASSWORD=$TOKEN psql -X -At -c "$QUERY WHERE id <= 3" \
	"host=127.0.0.1 port=$CS_PORT dbname=cs-masked user=bench sslmode=$SSLMODE")
if echo "$sample" | grep -Eq 'user[0-9]+@|[0-9]{3}-[0-9]{2}-[0-9]{4}'; then
	echo "masking failed, raw values reached psql:" >&2
	echo "$sample" >&2
	exit 1
fi

echo "SELECT of $ROWS rows x 5 columns with psql, best of $REPS, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), client sslmode=$SSLMODE" >&2
# cpu: the gateway's user+system CPU seconds so far; unlike wall time it
# hardly moves when other work shares the machine.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$CS_PID/stat"; }
DIRECT=(-h 127.0.0.1 -p $PG_PORT -U postgres $DB)
PLAIN="host=127.0.0.1 port=$CS_PORT dbname=cs-plain user=bench sslmode=$SSLMODE"
MASKED="host=127.0.0.1 port=$CS_PORT dbname=cs-masked user=bench sslmode=$SSLMODE"
export PGPASSWORD=$TOKEN # the direct connection trusts and ignores it
timed "${DIRECT[@]}" >/dev/null # warm the table into the page cache
if [ -n "${CS_PROFILE:-}" ]; then
	curl -s -o "$CS_PROFILE" "http://127.0.0.1:$PPROF_PORT/debug/pprof/profile?seconds=10" &
	prof=$!
fi
# The three take turns, so load from elsewhere falls on each alike; the
# best of REPS is kept. Gateway CPU is summed per variant.
d="" p="" m="" cp=0 cm=0
for _ in $(seq 1 "$REPS"); do
	d=$(min "$d" "$(timed "${DIRECT[@]}")")
	c0=$(cpu)
	p=$(min "$p" "$(timed "$PLAIN")")
	c1=$(cpu)
	m=$(min "$m" "$(timed "$MASKED")")
	c2=$(cpu)
	cp=$(echo "$cp + $c1 - $c0" | bc -l)
	cm=$(echo "$cm + $c2 - $c1" | bc -l)
done
if [ -n "${prof:-}" ]; then wait "$prof"; fi
hwm=$(awk '/VmHWM/ {print $2 / 1024}' "/proc/$CS_PID/status")
printf '%-30s %7.2f s\n' "direct" "$d" >&2
printf '%-30s %7.2f s  %.2fx direct   gateway CPU %.2f s a run\n' "countersign, no rules" "$p" "$(echo "$p / $d" | bc -l)" "$(echo "$cp / $REPS" | bc -l)" >&2
printf '%-30s %7.2f s  %.2fx direct   gateway CPU %.2f s a run\n' "countersign, masked" "$m" "$(echo "$m / $d" | bc -l)" "$(echo "$cm / $REPS" | bc -l)" >&2
printf 'countersign peak RSS (VmHWM)  %7.1f MiB\n' "$hwm" >&2
