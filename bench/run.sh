#!/usr/bin/env bash
# bench/run.sh - the tcc benchmark.
#
#   bash bench/run.sh                 full run (about 6-10 minutes)
#   BENCH_QUICK=1 bash bench/run.sh   quick run (about 2 minutes)
#
# Run as root from anywhere.  Unless TCC_SKIP_SETUP=1 it installs what it
# needs (nginx from Debian, plus what test/setup.sh installs) and builds and
# installs the extension (test/setup.sh).  It then creates a throwaway
# cluster as the postgres user (port BENCH_PORT, default 25419), starts
# Debian's nginx as a stub participant on 127.0.0.1 (port BENCH_STUB_PORT,
# default 18480; a slow stub for S1c on the next port), runs the scenarios
# S1-S6 (with S1b and S1c), prints a table and ends with ONE
# JSON line holding every figure.  Everything it started is stopped again,
# also on failure or interrupt.  See bench/README.md.
#
# Settings (environment):
#   BENCH_SECONDS      duration of each S1 run (default 15, quick 5)
#   BENCH_CLIENTS      S1 client counts (default "1 8 32"; S4 uses 32)
#   BENCH_S2_CALLS     S2 calls of each kind (default 2000, quick 500)
#   BENCH_S1C_GTX      S1c transactions of each kind (default 200, quick 40)
#   BENCH_S3_GTX       S3 global transactions (default 20000, quick 4000)
#   BENCH_S5_GTX       S5 global transactions (default 10000, quick 2000)
#   BENCH_S5_OUTAGE    S5 minimum stub outage in seconds (default 5, quick 3)
#   BENCH_S6_SECONDS   duration of each S6 run (default 15, quick 5)
#   BENCH_S6_HANG      S6 transactions stuck at the hanging participant
#                      (default 1000)
#   BENCH_HANG_PORT    port of S6's hanging participant (default stub + 2)
#   BENCH_ONLY=s6      run S6 alone
#   BENCH_SOAK=1       instead of S1-S6: the soak (bench/soak.sh), full load
#                      with one participant always hanging for
#                      BENCH_SOAK_SECONDS (default 600), worker memory
#                      sampled every 30 s
#   BENCH_PGSS=0       run without pg_stat_statements
#   BENCH_NGINX_WORKERS  nginx worker processes (default 1)
#   BENCH_DIR          parent of the scratch directory (default /tmp; it must
#                      be on a real disk, fsync is on)
#   BENCH_KEEP=1       keep the scratch directory (server log, pgbench logs)
#   BENCH_SYNC_STANDBY=1  add a synchronous streaming standby on loopback
#                      (port BENCH_PORT+1): every intent and decision then
#                      waits for it, as in a synchronous HA pair

set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
. "$ROOT/test/proc.sh"

PGBIN=${TCC_PGROOT:-}/usr/lib/postgresql/15/bin
PORT=${BENCH_PORT:-25419}
STUB_PORT=${BENCH_STUB_PORT:-18480}
STUB=http://127.0.0.1:$STUB_PORT
SLOW_PORT=$((STUB_PORT + 1))
SLOW=http://127.0.0.1:$SLOW_PORT
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	MODE=quick
	DURATION=${BENCH_SECONDS:-5}
	S2_CALLS=${BENCH_S2_CALLS:-500}
	S1C_GTX=${BENCH_S1C_GTX:-40}
	S3_GTX=${BENCH_S3_GTX:-4000}
	S5_GTX=${BENCH_S5_GTX:-2000}
	S5_OUTAGE=${BENCH_S5_OUTAGE:-3}
	S6_SECONDS=${BENCH_S6_SECONDS:-5}
else
	MODE=full
	DURATION=${BENCH_SECONDS:-15}
	S2_CALLS=${BENCH_S2_CALLS:-2000}
	S1C_GTX=${BENCH_S1C_GTX:-200}
	S3_GTX=${BENCH_S3_GTX:-20000}
	S5_GTX=${BENCH_S5_GTX:-10000}
	S5_OUTAGE=${BENCH_S5_OUTAGE:-5}
	S6_SECONDS=${BENCH_S6_SECONDS:-15}
fi
S6_HANG=${BENCH_S6_HANG:-1000}
HANG_PORT=${BENCH_HANG_PORT:-$((STUB_PORT + 2))}
HANG=http://127.0.0.1:$HANG_PORT
SOAK=${BENCH_SOAK:-0}
SOAK_SECONDS=${BENCH_SOAK_SECONDS:-600}
CLIENTS=${BENCH_CLIENTS:-1 8 32}
PGSS=${BENCH_PGSS:-1}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}
PREPARE_CLIENTS=16			# sessions that create the S3 / S5 transactions
DRAIN_TIMEOUT=300			# seconds a phase two may take before it counts as stuck
NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)

# targets: they live only here, and a missed one does not fail the run
TARGET_S1_GTX_PER_S=5000
TARGET_S1B_GTX_PER_S=4000
TARGET_S1C_RUN_P50_MS=70
TARGET_S2_OVERHEAD_P50_US=100
TARGET_S3_CALLS_PER_S=20000
TARGET_S4_P99_MS=50

export LC_ALL=C LANG=C
unset PGSERVICE PGOPTIONS PGPASSWORD PGSSLMODE PGHOSTADDR PGDATABASE

die() {
	echo "bench: $*" >&2
	error_message=$*
	status=1
	exit 1
}

# ---------------------------------------------------------------- figures
#
# Every figure goes into $FIGURES as "path<TAB>json value", e.g.
# "s1.c32.gtx_per_s<TAB>5123.4"; the closing JSON line nests them by path.

FIGURES=$(mktemp /tmp/tcc-bench-figures.XXXXXX) || die "mktemp failed"
anomalies=()
error_message=
json_printed=0
status=0

# Records a figure; numbers, null, true and false go as they are, anything
# else as a JSON string.
fig() {
	local path=$1 value=$2
	if [[ ! "$value" =~ ^-?[0-9]+(\.[0-9]+)?$ && "$value" != null &&
		"$value" != true && "$value" != false ]]; then
		value=$(json_string "$value")
	fi
	printf '%s\t%s\n' "$path" "$value" >>"$FIGURES"
}

# Quotes a string for JSON.
json_string() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/ }
	s=${s//$'\n'/ }
	printf '"%s"' "$s"
}

TMP=
PGDATA_DIR=
PGLOG=
server_started=0
STANDBY_DIR=
nginx_pid=
hang_pid=
slow_pid=
sampler_pid=

# Run a command as the postgres OS user.
as_postgres() {
	(cd "$TMP" && runuser -u postgres -- "$@")
}

# Stops nginx if it runs.
stop_nginx() {
	stop_process "$nginx_pid"
	nginx_pid=
}

# Stops the hanging participant if it runs.
stop_hang() {
	stop_process "$hang_pid"
	hang_pid=
}

# Stop everything this script started, print the JSON line if it was not
# printed yet, and remove the scratch directory.
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ $status = 0 ] && [ $rc != 0 ] && status=$rc
	if [ $status != 0 ] && [ -n "$PGLOG" ] && [ -f "$PGLOG" ]; then
		echo "---- tail of the server log (memory context dumps left out)"
		grep -v 'LOG:  level: ' "$PGLOG" | tail -n 40
	fi
	if [ -n "$sampler_pid" ]; then
		kill -TERM "$sampler_pid" 2>/dev/null
		wait "$sampler_pid" 2>/dev/null
	fi
	stop_nginx
	stop_hang
	stop_process "$slow_pid"
	if [ -n "$STANDBY_DIR" ] && [ -f "$STANDBY_DIR/postmaster.pid" ]; then
		as_postgres "$PGBIN/pg_ctl" -D "$STANDBY_DIR" -m immediate -w stop >/dev/null 2>&1
	fi
	if [ $server_started = 1 ] && [ -f "$PGDATA_DIR/postmaster.pid" ]; then
		as_postgres "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -t 60 -w stop >/dev/null 2>&1 ||
			as_postgres "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1
	fi
	if [ $status != 0 ] && [ $json_printed = 0 ]; then
		[ -n "$error_message" ] || error_message="run failed (exit $status)"
		print_json
	fi
	if [ -z "$TMP" ]; then
		:
	elif [ "${BENCH_KEEP:-}" = 1 ]; then
		echo "bench: kept $TMP"
	else
		rm -rf "$TMP"
	fi
	rm -f "$FIGURES"
	exit $status
}
trap cleanup EXIT
trap 'error_message=interrupted; status=130; exit 130' INT TERM
fig bench tcc
fig mode "$MODE"

# Records and shows something wrong with the extension or the run.
anomaly() {
	echo "ANOMALY: $*"
	anomalies+=("$*")
}

# Prints the figures as one JSON line, objects nested by path.
print_json() {
	local list="" a
	[ $json_printed = 1 ] && return
	json_printed=1
	for a in "${anomalies[@]+"${anomalies[@]}"}"; do
		list+="${list:+,}$(json_string "$a")"
	done
	printf 'anomalies\t[%s]\n' "$list" >>"$FIGURES"
	[ -n "$error_message" ] && fig error "$error_message"
	awk -F'\t' '
	{
		n = split($1, p, ".")
		key = ""
		for (i = 1; i <= n; i++) {
			parent = key
			key = (i == 1) ? p[i] : key "." p[i]
			if (!(key in seen)) {
				seen[key] = 1
				kids[parent] = kids[parent] SUBSEP key
			}
		}
		val[$1] = $2
	}
	function emit(k,    arr, m, i, name, out) {
		if (!(k in kids))
			return val[k]
		m = split(substr(kids[k], 2), arr, SUBSEP)
		out = "{"
		for (i = 1; i <= m; i++) {
			name = arr[i]
			sub(/.*\./, "", name)
			out = out (i > 1 ? "," : "") "\"" name "\":" emit(arr[i])
		}
		return out "}"
	}
	END { print emit("") }' "$FIGURES"
}

# Arithmetic on decimals: calc '1.5 * 2' prints 3.000 (or $2 decimals).
calc() {
	awk "BEGIN { v = $1; printf \"%.${2:-3}f\", v }"
}

now() {
	date +%s.%N
}

# ---------------------------------------------------------------- setup

if [ "${TCC_SKIP_SETUP:-}" != 1 ]; then
	if ! [ -x /usr/sbin/nginx ]; then
		[ "$(id -u)" = 0 ] || die "nginx is missing: run as root to install it"
		echo "bench: installing nginx"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update || die "apt-get update failed"
		apt-get install -y --no-install-recommends nginx </dev/null ||
			die "installing nginx failed"
		export TCC_APT_UPDATED=1
	fi
	bash test/setup.sh || die "setup failed"
fi
[ -x /usr/sbin/nginx ] || die "nginx is missing (run without TCC_SKIP_SETUP=1)"
[ -x "$PGBIN/pgbench" ] || die "pgbench is missing (package postgresql-client-15)"
[ "$(id -u)" = 0 ] || die "run as root (the cluster runs as postgres, nginx as root)"
TCC_SO=$("$PGBIN/pg_config" --pkglibdir)/tcc.so
[ -f "$TCC_SO" ] || die "$TCC_SO is missing (run without TCC_SKIP_SETUP=1)"

# Is something listening on 127.0.0.1:$1?
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

port_busy "$PORT" && die "port $PORT is in use (set BENCH_PORT)"
port_busy "$STUB_PORT" && die "port $STUB_PORT is in use (set BENCH_STUB_PORT)"
port_busy "$SLOW_PORT" && die "port $SLOW_PORT is in use (the slow stub takes BENCH_STUB_PORT + 1)"

TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/tcc-bench.XXXXXX") || die "mktemp failed"
chmod 755 "$TMP"
chown postgres:postgres "$TMP"
PGDATA_DIR=$TMP/data
PGLOG=$TMP/server.log
LOGDIR=$TMP/logs
NGX=$TMP/nginx
mkdir -p "$LOGDIR" "$NGX"


fig commit "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
fig started_at "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fig tcc_so_sha256 "$(sha256sum "$TCC_SO" | cut -c1-16)"
fig host.cpus "$NPROC"
fig host.load_1min "$(cut -d' ' -f1 /proc/loadavg)"

# ---------------------------------------------------------------- plainpost

gcc -O2 -Wall -Wextra -Werror -o "$TMP/plainpost" bench/plainpost.c -lcurl ||
	die "building bench/plainpost.c failed"

# ---------------------------------------------------------------- cluster

echo "bench: cluster in $TMP, port $PORT ($MODE mode)"
as_postgres "$PGBIN/initdb" -D "$PGDATA_DIR" --auth=trust --username=postgres \
	--encoding=UTF8 --locale=C >"$TMP/initdb.log" 2>&1 || {
	cat "$TMP/initdb.log"
	die "initdb failed"
}

# the database exists before the first start, so the worker finds it at once
as_postgres "$PGBIN/postgres" --single -D "$PGDATA_DIR" postgres \
	>"$TMP/single.log" 2>&1 <<<'CREATE DATABASE bench' || {
	cat "$TMP/single.log"
	die "creating database bench failed"
}

preload=tcc
[ "$PGSS" = 1 ] && preload=tcc,pg_stat_statements
cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# ---- tcc benchmark cluster (bench/run.sh)
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$TMP'
max_connections = 200
shared_buffers = '1GB'
# durability is part of the product (SPEC R1, R2): nothing here is relaxed
fsync = on
synchronous_commit = on
full_page_writes = on
wal_level = replica
wal_buffers = '16MB'
max_wal_size = '8GB'
min_wal_size = '1GB'
checkpoint_timeout = '15min'
track_wal_io_timing = on
# S3 and S5 decide thousands of gids in one transaction; tcc_finish takes one
# lock per gid until commit, so the shared lock table must hold them
max_locks_per_transaction = 256
shared_preload_libraries = '$preload'
pg_stat_statements.track = 'all'
tcc.database = 'bench'
log_line_prefix = '%m [%p] %q%b %a: '
log_checkpoints = on
EOF

as_postgres "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG" -w -t 120 start >/dev/null ||
	die "the benchmark cluster did not start"
server_started=1

# A synchronous standby on loopback (BENCH_SYNC_STANDBY=1): what a
# synchronous HA pair adds to every intent and decision.
if [ "${BENCH_SYNC_STANDBY:-0}" = 1 ]; then
	STANDBY_DIR=$TMP/standby
	as_postgres "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres \
		-D "$STANDBY_DIR" --checkpoint=fast -X stream \
		>"$TMP/basebackup.log" 2>&1 || {
		cat "$TMP/basebackup.log"
		die "pg_basebackup for the standby failed"
	}
	as_postgres tee -a "$STANDBY_DIR/postgresql.conf" >/dev/null <<CONF
port = $((PORT + 1))
primary_conninfo = 'host=127.0.0.1 port=$PORT user=postgres application_name=bench_standby'
CONF
	as_postgres touch "$STANDBY_DIR/standby.signal"
	as_postgres "$PGBIN/pg_ctl" -D "$STANDBY_DIR" -l "$TMP/standby.log" -w -t 120 start >/dev/null ||
		die "the standby did not start"
	as_postgres "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
		-c "ALTER SYSTEM SET synchronous_standby_names = 'bench_standby'" \
		-c "SELECT pg_reload_conf()" >/dev/null || die "setting synchronous_standby_names failed"
	state=
	for _ in $(seq 1 300); do
		state=$(as_postgres "$PGBIN/psql" -X -At -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
			-c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'bench_standby'")
		[ "$state" = sync ] && break
		sleep 0.1
	done
	[ "$state" = sync ] || die "the standby did not become synchronous"
	echo "bench: synchronous standby on port $((PORT + 1))"
fi
fig sync_standby "${BENCH_SYNC_STANDBY:-0}"

# The workload (pgbench, and the few statements of the scenarios made with
# psql) runs as postgres; the benchmark's own queries -- polls, figures,
# samples -- as the superuser bench, so that pg_stat_statements can tell
# them apart.
PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U bench -d bench)
APP_PSQL=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d bench)

# SQL of the benchmark itself (more -c / -f arguments, or stdin).
sql() {
	"${PSQL[@]}" "$@"
}
q() {
	"${PSQL[@]}" -c "$1"
}

# SQL that is part of the workload.
app_sql() {
	"${APP_PSQL[@]}" "$@"
}
app_q() {
	"${APP_PSQL[@]}" -c "$1"
}

app_q 'CREATE ROLE bench SUPERUSER LOGIN' >/dev/null || die "CREATE ROLE bench failed"

app_q 'CREATE EXTENSION tcc' >/dev/null || die "CREATE EXTENSION tcc failed"
if [ "$PGSS" = 1 ]; then
	app_q 'CREATE EXTENSION pg_stat_statements' >/dev/null ||
		die "CREATE EXTENSION pg_stat_statements failed"
fi

# the benchmark's own bookkeeping: wait-event samples, statement snapshots
sql >/dev/null <<'EOF' || die "creating schema bench failed"
CREATE SCHEMA bench;
CREATE TABLE bench.sampling (tag text PRIMARY KEY);
CREATE TABLE bench.waits (tag text, backend_type text, activity text, wait text);
-- Samples pg_stat_activity every 100 ms, one transaction per sample, until
-- its row in bench.sampling is deleted or max_s seconds pass.
CREATE PROCEDURE bench.sample_waits(p_tag text, max_s float8)
LANGUAGE plpgsql AS $$
DECLARE
    stop_at timestamptz := clock_timestamp() + max_s * interval '1 s';
BEGIN
    WHILE clock_timestamp() < stop_at
          AND EXISTS (SELECT 1 FROM bench.sampling WHERE tag = p_tag) LOOP
        INSERT INTO bench.waits
        SELECT p_tag, backend_type,
               CASE WHEN backend_type = 'tcc coordinator'
                    THEN COALESCE(NULLIF(query, ''), 'idle')
                    WHEN state = 'active'
                    THEN COALESCE(substring(query FROM 'tcc_[a-z]+'),
                                  lower(split_part(btrim(query), ' ', 1)))
                    ELSE state END,
               COALESCE(wait_event_type || ':' || wait_event, 'CPU')
          FROM pg_stat_activity
         WHERE pid <> pg_backend_pid()
           AND (backend_type = 'tcc coordinator'
                OR (backend_type = 'client backend' AND datname = 'bench'
                    AND COALESCE(application_name, '') <> 'bench_poll'));
        COMMIT;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
CREATE TABLE bench.pgss_snap (tag text, userid oid, queryid bigint, toplevel boolean,
                              calls bigint, total_ms float8, query text);
EOF

# the worker comes up within a second of CREATE EXTENSION
WORKER_PID=
for _ in $(seq 1 100); do
	WORKER_PID=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tcc coordinator'")
	[ -n "$WORKER_PID" ] && break
	sleep 0.1
done
[ -n "$WORKER_PID" ] || die "the tcc coordinator worker did not start"

# ---------------------------------------------------------------- stub

cat >"$NGX/nginx.conf" <<EOF
# stub participant for the tcc benchmark: every try, confirm and cancel
# answers 200 {"ok":true} at once; connections are kept alive
worker_processes $NGINX_WORKERS;
daemon off;
master_process on;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    default_type application/json;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    client_body_temp_path $NGX/client_body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;
    server {
        listen 127.0.0.1:$STUB_PORT backlog=4096;
        location ~ /(try|confirm|cancel)\$ {
            return 200 '{"ok":true}';
        }
        location / {
            return 404;
        }
    }
}
EOF
NGINX=(/usr/sbin/nginx -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf")
"${NGINX[@]}" -t >"$NGX/check.log" 2>&1 || {
	cat "$NGX/check.log"
	die "the nginx configuration does not load"
}

# Starts nginx and waits until it answers.
start_nginx() {
	"${NGINX[@]}" </dev/null >>"$NGX/stdout.log" 2>&1 &
	nginx_pid=$!
	for _ in $(seq 1 100); do
		port_busy "$STUB_PORT" && return 0
		kill -0 "$nginx_pid" 2>/dev/null || break
		sleep 0.05
	done
	cat "$NGX/error.log" 2>/dev/null
	die "nginx did not start on port $STUB_PORT"
}

start_nginx
"$TMP/plainpost" "$STUB/check/try" 1 >/dev/null || die "the stub does not answer"

# A participant that never answers (S6, soak): it accepts each connection
# and holds it for a minute without reading, so every call to it lasts
# tcc.request_timeout.
start_hang() {
	port_busy "$HANG_PORT" && die "port $HANG_PORT is in use (set BENCH_HANG_PORT)"
	/usr/bin/python3 -c '
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(4096)
while True:
    c, _ = s.accept()
    threading.Timer(60, c.close).start()
' "$HANG_PORT" </dev/null >>"$TMP/hang.log" 2>&1 &
	hang_pid=$!
	for _ in $(seq 1 100); do
		port_busy "$HANG_PORT" && return 0
		sleep 0.05
	done
	die "the hanging participant did not start on port $HANG_PORT"
}

# Decides n transactions of a kind whose one confirm goes to the hanging
# participant (no try), in one transaction.
decide_hanging() {
	app_q "DO \$\$
	       DECLARE g uuid;
	       BEGIN
	         FOR i IN 1..$2 LOOP
	           g := tcc_begin(interval '1 day', '$1');
	           PERFORM tcc_branch(g, NULL, '$HANG/confirm', '$HANG/cancel');
	           PERFORM tcc_finish(g);
	         END LOOP;
	       END \$\$" >/dev/null || die "deciding the $1 transactions failed"
}

# Resolves the transactions of a kind that are not final yet.
resolve_kind() {
	app_q "SELECT count(tcc_resolve(gid, 'bench: hanging participant'))
	         FROM tcc.transactions WHERE kind = '$1'
	          AND status NOT IN ('confirmed', 'cancelled', 'resolved')" >/dev/null
}

# ---------------------------------------------------------------- helpers

# Prints "cpu_seconds rss_kb rss_anon_kb" of a process.
proc_usage() {
	local pid=$1 ticks rss anon
	[ -r "/proc/$pid/stat" ] || {
		echo "null null null"
		return
	}
	# fields after "pid (comm) ": utime and stime are the 12th and 13th
	ticks=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status")
	echo "$(calc "$ticks / $CLK_TCK" 2) ${rss:-null} ${anon:-null}"
}

# Prints "total idle steal" jiffies of the whole machine (/proc/stat).
host_cpu() {
	awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6, $9 }' /proc/stat
}

# Records the machine's CPU use between two host_cpu outputs: busy and
# steal percentages of all cores.  Sets host_busy and host_steal.
host_figs() {
	local path=$1 t0 i0 st0 t1 i1 st1
	read -r t0 i0 st0 <<<"$2"
	read -r t1 i1 st1 <<<"$3"
	host_busy=$(calc "($t1 > $t0) ? 100 * (1 - ($i1 - $i0) / ($t1 - $t0)) : 0" 0)
	host_steal=$(calc "($t1 > $t0) ? 100 * ($st1 - $st0) / ($t1 - $t0) : 0" 0)
	fig "$path.host_cpu_busy_pct" "$host_busy"
	fig "$path.host_cpu_steal_pct" "$host_steal"
}

# Records the worker's resident memory after a scenario.
worker_rss_fig() {
	local rss anon
	read -r _ rss anon <<<"$(proc_usage "$WORKER_PID")"
	fig "$1.worker_rss_kb" "$rss"
	fig "$1.worker_rss_anon_kb" "$anon"
}

# Worker CPU seconds now.
worker_cpu() {
	local u
	read -r u _ _ <<<"$(proc_usage "$WORKER_PID")"
	echo "$u"
}

# Prints "n p50 p99 mean max" of the numbers in column $1 of the files that
# follow (nearest-rank percentiles); non-numeric entries are skipped.
col_stats() {
	local col=$1
	shift
	awk -v c="$col" '$c ~ /^[0-9]+(\.[0-9]+)?$/ { print $c }' "$@" | sort -g |
		awk '
		function rank(p,    r) { r = int(p * NR); if (r < p * NR) r++; if (r < 1) r = 1; return r }
		{ a[NR] = $1; s += $1 }
		END {
			if (NR == 0) { print "0 null null null null"; exit }
			printf "%d %s %s %.1f %s\n", NR, a[rank(0.5)], a[rank(0.99)], s / NR, a[NR]
		}'
}

# Microseconds to milliseconds (null stays null).
ms() {
	if [ "$1" = null ]; then echo null; else calc "$1 / 1000" 3; fi
}

# Makes a pgbench script from a template in bench/sql: the stub's URL in.
script() {
	sed -e "s|@STUB@|$STUB|g" -e "s|@SLOW@|$SLOW|g" "bench/sql/$1.sql" >"$TMP/$1.sql"
	echo "$TMP/$1.sql"
}

# Runs pgbench: run_pgbench NAME CLIENTS SCRIPT [pgbench options...].
# Per-transaction latencies go to $LOGDIR/NAME.*; its output to NAME.out.
# Sets pg_tps, pg_processed, pg_failed; returns pgbench's exit status.
run_pgbench() {
	local name=$1 clients=$2 file=$3 jobs rc
	shift 3
	jobs=$((clients < NPROC ? clients : NPROC))
	"$PGBIN/pgbench" -n -M prepared -h 127.0.0.1 -p "$PORT" -U postgres \
		-c "$clients" -j "$jobs" -f "$file" \
		--log --log-prefix="$LOGDIR/$name" "$@" bench >"$LOGDIR/$name.out" 2>&1
	rc=$?
	pg_tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$LOGDIR/$name.out" | tail -n 1)
	pg_processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' \
		"$LOGDIR/$name.out")
	pg_failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$LOGDIR/$name.out")
	: "${pg_tps:=0}" "${pg_processed:=0}" "${pg_failed:=0}"
	if [ $rc != 0 ] || grep -q 'aborted' "$LOGDIR/$name.out"; then
		anomaly "pgbench $name exited $rc: $(grep -m 3 -iE 'error|abort' "$LOGDIR/$name.out" | tr '\n' ' ')"
	fi
	return $rc
}

# Counts the transactions of a kind that are not final (failed counts as
# final here: it waits for a person).  Reads the table directly, so polling
# stays cheap.
open_count() {
	PGAPPNAME=bench_poll q "SELECT count(*) FROM tcc._gtx WHERE kind = '$1'
	                          AND status IN ('trying', 'confirming', 'cancelling')"
}

# Waits until every transaction of a kind is final, polling every 0.25 s
# (timings come from the tables, not from the polls; see last_finished).
# On timeout records an anomaly with evidence and returns 1.
wait_settled() {
	local kind=$1 limit=$2 start left
	start=$(now)
	while :; do
		left=$(open_count "$kind")
		if [ "$left" = 0 ]; then
			return 0
		fi
		if awk "BEGIN { exit !($(now) - $start > $limit) }"; then
			anomaly "$left transactions of kind $kind not final after ${limit}s: $(
				q "SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n
				     FROM tcc.transactions WHERE kind = '$kind' GROUP BY 1 ORDER BY 1) s") ; sample: $(
				q "SELECT string_agg(format('%s/%s %s attempts=%s http=%s err=%s next=%s',
				           b.gid, b.branch, b.status, b.attempts, b.last_http_status,
				           b.last_error, b.next_attempt_at), ' | ')
				     FROM (SELECT b.* FROM tcc.branches b JOIN tcc._gtx g USING (gid)
				            WHERE g.kind = '$kind' AND g.status IN ('trying', 'confirming', 'cancelling')
				            LIMIT 3) b") ; worker: $(q "SELECT format('pid=%s in_flight=%s queue=%s err=%s',
				           pid, in_flight, queue_depth, last_error) FROM tcc.worker")"
			return 1
		fi
		sleep 0.25
	done
}

# Prints "lsn syncs sync_ms" now: the WAL position and pg_stat_wal's flush
# counters (a process's counters reach pg_stat_wal within about a second).
wal_snap() {
	q "SELECT pg_current_wal_lsn() - '0/0', wal_sync, wal_sync_time FROM pg_stat_wal" | tr '|' ' '
}

# Records WAL figures between two wal_snap outputs under a path, per gtx.
wal_figs() {
	local path=$1 gtx=$2 l0 s0 t0 l1 s1 t1
	read -r l0 s0 t0 <<<"$3"
	read -r l1 s1 t1 <<<"$4"
	[ "$gtx" -gt 0 ] || return 0
	wal_bytes_per_gtx=$(calc "($l1 - $l0) / $gtx" 0)
	wal_syncs_per_gtx=$(calc "($s1 - $s0) / $gtx" 2)
	wal_sync_mean_ms=$(calc "($s1 > $s0) ? ($t1 - $t0) / ($s1 - $s0) : 0" 3)
	fig "$path.wal_bytes_per_gtx" "$wal_bytes_per_gtx"
	fig "$path.wal_syncs_per_gtx" "$wal_syncs_per_gtx"
	fig "$path.wal_sync_mean_ms" "$wal_sync_mean_ms"
}

# Has the worker write its memory contexts to the server log; prints the
# grand total in bytes and records the largest contexts in $TMP/memory.$1.
worker_memory() {
	local tag=$1 before
	before=$(wc -l <"$PGLOG")
	q "SELECT pg_log_backend_memory_contexts($WORKER_PID)" >/dev/null
	for _ in $(seq 1 50); do
		if tail -n +"$((before + 1))" "$PGLOG" | grep -q "\[$WORKER_PID\] LOG:  Grand total"; then
			break
		fi
		sleep 0.1
	done
	tail -n +"$((before + 1))" "$PGLOG" | grep "\[$WORKER_PID\] LOG:  level: [0-9]*;" |
		sed -E -e 's/.*level: ([0-9]+); ([0-9]+ more child contexts) containing ([0-9]+) total.*/\3 \2 (level \1)/' \
			-e 's/.*level: ([0-9]+); ([^:]+): ([0-9]+) total.*/\3 \2 (level \1)/' |
		sort -rn | head -n 5 >"$TMP/memory.$tag"
	tail -n +"$((before + 1))" "$PGLOG" | grep "\[$WORKER_PID\] LOG:  Grand total" | head -n 1 |
		sed -E 's/.*Grand total: ([0-9]+) bytes.*/\1/'
}

# Prints when the last transaction of a kind became final (epoch seconds):
# finished_at, the start of the worker transaction that recorded it.
last_finished() {
	q "SELECT extract(epoch FROM max(finished_at)) FROM tcc._gtx WHERE kind = '$1'"
}

# Starts sampling wait events under a tag (stop_sampling ends it).
start_sampling() {
	q "INSERT INTO bench.sampling VALUES ('$1')" >/dev/null
	PGAPPNAME=bench_sampler q "CALL bench.sample_waits('$1', $2)" >/dev/null 2>&1 &
	sampler_pid=$!
}
stop_sampling() {
	q "DELETE FROM bench.sampling WHERE tag = '$1'" >/dev/null
	[ -n "$sampler_pid" ] && wait "$sampler_pid" 2>/dev/null
	sampler_pid=
}

# Prints where the sampled time went, per backend type.
show_waits() {
	echo "  where time goes during $2 (pg_stat_activity sampled every 100 ms):"
	sql -F $'\t' -c "
		SELECT backend_type, activity, wait, n, round(100.0 * n / sum(n) OVER (PARTITION BY backend_type), 1)
		  FROM (SELECT backend_type, activity, wait, count(*) n,
		               row_number() OVER (PARTITION BY backend_type ORDER BY count(*) DESC) r
		          FROM bench.waits WHERE tag = '$1' GROUP BY 1, 2, 3) s
		 WHERE r <= 8 ORDER BY backend_type DESC, n DESC" |
		awk -F'\t' '{ printf "    %-16s %-20s %-28s %5.1f%%\n", $1, substr($2, 1, 20), $3, $5 }'
}

# Saves a pg_stat_statements snapshot under a tag.
pgss_snap() {
	[ "$PGSS" = 1 ] || return 0
	q "INSERT INTO bench.pgss_snap
	   SELECT '$1', userid, queryid, toplevel, calls, total_exec_time, query
	     FROM pg_stat_statements
	    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench')
	      AND userid <> 'bench'::regrole" >/dev/null
}

# Prints the statements that took the most time between two snapshots.
pgss_top() {
	local from=$1 to=$2 title=$3 limit=${4:-12}
	[ "$PGSS" = 1 ] || return 0
	echo "  top statements by total time, $title (pg_stat_statements, track = all;"
	echo "  top y: a client's statement or the worker's own SQL; n: run inside a tcc_* function):"
	printf '    %10s %9s %9s %3s  %s\n' total_ms calls mean_ms top query
	sql -F $'\t' -c "
		WITH d AS (
		  SELECT b.queryid, b.toplevel, b.query,
		         b.calls - COALESCE(a.calls, 0) AS calls,
		         b.total_ms - COALESCE(a.total_ms, 0) AS total_ms
		    FROM bench.pgss_snap b
		    LEFT JOIN bench.pgss_snap a
		      ON a.tag = '$from' AND a.userid = b.userid AND a.queryid = b.queryid
		         AND a.toplevel = b.toplevel
		   WHERE b.tag = '$to')
		SELECT round(total_ms::numeric, 0), calls, round((total_ms / NULLIF(calls, 0))::numeric, 3),
		       CASE WHEN toplevel THEN 'y' ELSE 'n' END,
		       left(regexp_replace(query, '\s+', ' ', 'g'), 110)
		  FROM d
		 WHERE calls > 0
		 ORDER BY total_ms DESC LIMIT $limit" |
		awk -F'\t' '{ printf "    %10s %9s %9s %3s  %s\n", $1, $2, $3, $4, $5 }'
}

# ---------------------------------------------------------------- settings

echo
echo "==== settings"
sql -F $'\t' -c "
	SELECT name, current_setting(name)
	  FROM pg_settings
	 WHERE name IN ('server_version', 'max_connections', 'shared_buffers', 'fsync',
	                'synchronous_commit', 'full_page_writes', 'wal_level', 'wal_buffers',
	                'wal_sync_method', 'commit_delay', 'max_wal_size', 'checkpoint_timeout',
	                'max_locks_per_transaction', 'shared_preload_libraries',
	                'track_wal_io_timing', 'autovacuum', 'autovacuum_naptime',
	                'pg_stat_statements.track')
	    OR name LIKE 'tcc.%'
	 ORDER BY name" | while IFS=$'\t' read -r name value; do
	printf '  %-28s %s\n' "$name" "$value"
	fig "settings.$name" "$value"
done
echo "  stub: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's|.*/||') at $STUB, $NGINX_WORKERS worker(s), keepalive on"
echo "  data directory: $PGDATA_DIR ($(df -T "$TMP" | awk 'NR == 2 { print $2 }'))"
echo "  mode: $MODE; S1 ${DURATION}s per client count ($CLIENTS); S2 $S2_CALLS calls;"
echo "        S3 $S3_GTX gtx; S5 $S5_GTX gtx, outage >= ${S5_OUTAGE}s"
fig settings.stub "nginx $NGINX_WORKERS worker(s) at $STUB"

# the smoke test: one global transaction end to end
smoke=$(app_sql <<EOF 2>&1
BEGIN;
SELECT tcc_begin(kind => 'smoke') AS gid \gset
SELECT tcc_branch(:'gid', '$STUB/a/try', '$STUB/a/confirm', '$STUB/a/cancel') IS NOT NULL;
SELECT tcc_finish(:'gid');
COMMIT;
SELECT tcc_wait(:'gid', '10 s');
EOF
)
[ "$(echo "$smoke" | tail -n 1)" = confirmed ] || die "smoke test failed: $smoke"

read -r cpu0 rss0 anon0 <<<"$(proc_usage "$WORKER_PID")"
echo "  worker: pid $WORKER_PID, cpu ${cpu0}s, rss ${rss0} kB (anon ${anon0} kB) at start"
fig worker.pid_start "$WORKER_PID"
fig worker.cpu_s_start "$cpu0"
fig worker.rss_kb_start "$rss0"
fig worker.rss_anon_kb_start "$anon0"
mem0=$(worker_memory start)
echo "  worker memory contexts: ${mem0:-?} bytes at start"
fig worker.memory_contexts_bytes_start "${mem0:-null}"
pgss_snap start

# ---------------------------------------------------------------- S6

# Confirm lag (decided_at to finished_at) of a kind: "p50 p99 max" in ms.
lag_stats() {
	q "SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY l)::numeric, 3),
	          round(percentile_disc(0.99) WITHIN GROUP (ORDER BY l)::numeric, 3),
	          round(max(l)::numeric, 3)
	     FROM (SELECT extract(epoch FROM finished_at - decided_at) * 1000 AS l
	             FROM tcc.transactions WHERE kind = '$1' AND status = 'confirmed') s" | tr '|' ' '
}

# S6: confirm lag to the stub from 8 clients for S6_SECONDS, first quiet,
# then while S6_HANG decided transactions wait on a participant that never
# answers (another destination).
run_s6() {
	local q50 q99 qmax n50 n99 nmax in_flight
	echo
	echo "==== S6 noisy neighbour: confirm lag to the stub, quiet and while $S6_HANG confirms hang elsewhere"
	gtx_script=$(script gtx)
	run_pgbench s6_quiet 8 "$gtx_script" -T "$S6_SECONDS" -D kind=s6_quiet
	wait_settled s6_quiet 60
	read -r q50 q99 qmax <<<"$(lag_stats s6_quiet)"
	echo "  quiet:  c=8 $(calc "$pg_tps" 1) gtx/s; confirm lag p50 $q50 ms  p99 $q99 ms  max $qmax ms"
	start_hang
	decide_hanging s6_hang "$S6_HANG"
	sleep 1
	run_pgbench s6_noisy 8 "$gtx_script" -T "$S6_SECONDS" -D kind=s6_noisy
	read -r _ in_flight _ <<<"$(q "SELECT pid, in_flight, queue_depth FROM tcc.worker" | tr '|' ' ')"
	wait_settled s6_noisy 120
	read -r n50 n99 nmax <<<"$(lag_stats s6_noisy)"
	echo "  noisy:  c=8 $(calc "$pg_tps" 1) gtx/s; confirm lag p50 $n50 ms  p99 $n99 ms  max $nmax ms" \
		"($in_flight calls in flight at the end)"
	stop_hang
	resolve_kind s6_hang
	fig s6.seconds "$S6_SECONDS"
	fig s6.hanging_gtx "$S6_HANG"
	fig s6.quiet.confirm_lag_p50_ms "${q50:-null}"
	fig s6.quiet.confirm_lag_p99_ms "${q99:-null}"
	fig s6.noisy.confirm_lag_p50_ms "${n50:-null}"
	fig s6.noisy.confirm_lag_p99_ms "${n99:-null}"
	fig s6.noisy.confirm_lag_max_ms "${nmax:-null}"
}

# BENCH_ONLY=s6: S6 alone, then the JSON line.
if [ "${BENCH_ONLY:-}" = s6 ]; then
	run_s6
	echo
	print_json
	exit 0
fi

# ---------------------------------------------------------------- soak

# BENCH_SOAK=1 (bench/soak.sh): full load for SOAK_SECONDS -- S1's
# transactions from 16 sessions -- while one participant always hangs and
# new transactions for it keep coming; the worker's memory is sampled every
# 30 s.  Then the run ends.
if [ "$SOAK" = 1 ]; then
	echo
	echo "==== soak: ${SOAK_SECONDS}s of S1 at c=16 while a participant hangs on every call"
	start_hang
	decide_hanging soak_hang "$S6_HANG"
	run_pgbench soak 16 "$(script gtx)" -T "$SOAK_SECONDS" -D kind=soak &
	soak_pid=$!
	soak_t0=$(now)
	samples=0
	while kill -0 "$soak_pid" 2>/dev/null; do
		read -r cpu rss anon <<<"$(proc_usage "$WORKER_PID")"
		read -r flight queue <<<"$(q "SELECT in_flight, queue_depth FROM tcc.worker" | tr '|' ' ')"
		at=$(calc "$(now) - $soak_t0" 0)
		printf '  %5ss  worker rss %7s kB  anon %7s kB  cpu %8ss  in flight %4s  queued %6s\n' \
			"$at" "$rss" "$anon" "$cpu" "$flight" "$queue"
		fig "soak.samples.$samples.at_s" "$at"
		fig "soak.samples.$samples.rss_kb" "$rss"
		fig "soak.samples.$samples.rss_anon_kb" "$anon"
		samples=$((samples + 1))
		# more work for the hanging participant, a batch every 30 s
		decide_hanging soak_hang 100
		for _ in $(seq 1 30); do
			kill -0 "$soak_pid" 2>/dev/null || break
			sleep 1
		done
	done
	wait "$soak_pid"
	wait_settled soak 60
	read -r cpu rss anon <<<"$(proc_usage "$WORKER_PID")"
	soak_confirmed=$(q "SELECT count(*) FROM tcc._gtx WHERE kind = 'soak' AND status = 'confirmed'")
	echo "  end: worker rss $rss kB, anon $anon kB, cpu ${cpu}s;" \
		"$soak_confirmed confirmed, $(calc "$soak_confirmed / $SOAK_SECONDS" 1) gtx/s"
	fig soak.seconds "$SOAK_SECONDS"
	fig soak.confirmed "$soak_confirmed"
	fig soak.gtx_per_s "$(calc "$soak_confirmed / $SOAK_SECONDS" 1)"
	fig soak.rss_anon_kb_end "$anon"
	stop_hang
	resolve_kind soak_hang
	pid_end=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tcc coordinator'")
	[ "$pid_end" = "$WORKER_PID" ] ||
		anomaly "the worker's pid changed from $WORKER_PID to ${pid_end:-none}: it restarted"
	echo
	print_json
	exit 0
fi

# ---------------------------------------------------------------- S1, S4

echo
echo "==== S1 end to end: begin, 2 branches, finish, commit (${DURATION}s per client count)"
gtx_script=$(script gtx)
for c in $CLIENTS; do
	kind=s1_c$c
	[ "$c" = 32 ] && start_sampling s1_c32 $((DURATION + 30))
	[ "$c" = 32 ] && pgss_snap s1_c32_before
	w0=$(worker_cpu)
	wal0=$(wal_snap)
	cpu_a=$(host_cpu)
	run_pgbench "$kind" "$c" "$gtx_script" -T "$DURATION" -D kind="$kind"
	cpu_b=$(host_cpu)
	[ "$c" = 32 ] && stop_sampling s1_c32
	wait_settled "$kind" 60
	w1=$(worker_cpu)
	sleep 1.1	# the worker's WAL counters reach pg_stat_wal within a second
	wal1=$(wal_snap)
	[ "$c" = 32 ] && pgss_snap s1_c32_after
	read -r n p50 p99 mean max <<<"$(col_stats 3 "$LOGDIR/$kind".[0-9]*)"
	IFS='|' read -r confirmed cancelled other lag50 lag99 lagmax <<<"$(q "
		SELECT count(*) FILTER (WHERE status = 'confirmed'),
		       count(*) FILTER (WHERE status = 'cancelled'),
		       count(*) FILTER (WHERE status NOT IN ('confirmed', 'cancelled')),
		       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY lag_ms)::numeric, 3),
		       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY lag_ms)::numeric, 3),
		       round(max(lag_ms)::numeric, 3)
		  FROM (SELECT status, CASE WHEN status = 'confirmed'
		               THEN extract(epoch FROM finished_at - decided_at) * 1000 END AS lag_ms
		          FROM tcc.transactions WHERE kind = '$kind') s")"
	# the HTTP part of tcc_branch: the try's own duration (tcc._try, the
	# source of tcc.attempts' try rows)
	IFS='|' read -r try50 try99 <<<"$(q "
		SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY a.duration_ms)::numeric, 3),
		       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY a.duration_ms)::numeric, 3)
		  FROM tcc._try a JOIN tcc._gtx g USING (gid)
		 WHERE g.kind = '$kind'")"
	printf '  c=%-3s %9s gtx/s  latency p50 %s ms  p99 %s ms  (%s gtx, %s failed; db: %s confirmed, %s cancelled, %s other)\n' \
		"$c" "$(calc "$pg_tps" 1)" "$(ms "$p50")" "$(ms "$p99")" "$pg_processed" "$pg_failed" \
		"$confirmed" "$cancelled" "$other"
	printf '        confirm lag p50 %s ms  p99 %s ms  max %s ms; worker cpu %ss (%s%% of one core)\n' \
		"${lag50:-null}" "${lag99:-null}" "${lagmax:-null}" "$(calc "$w1 - $w0" 2)" \
		"$(calc "100 * ($w1 - $w0) / $DURATION" 0)"
	fig "s1.c$c.clients" "$c"
	wal_figs "s1.c$c" "$pg_processed" "$wal0" "$wal1"
	host_figs "s1.c$c" "$cpu_a" "$cpu_b"
	printf '        try (HTTP only) p50 %s ms  p99 %s ms; WAL per gtx %s bytes, %s flushes (mean %s ms)\n' \
		"${try50:-null}" "${try99:-null}" "${wal_bytes_per_gtx:-null}" "${wal_syncs_per_gtx:-null}" \
		"${wal_sync_mean_ms:-null}"
	printf '        machine cpu %s%% busy (%s%% steal) over %s cores\n' "$host_busy" "$host_steal" "$NPROC"
	fig "s1.c$c.seconds" "$DURATION"
	fig "s1.c$c.gtx_per_s" "$(calc "$pg_tps" 1)"
	fig "s1.c$c.p50_ms" "$(ms "$p50")"
	fig "s1.c$c.p99_ms" "$(ms "$p99")"
	fig "s1.c$c.mean_ms" "$(ms "$mean")"
	fig "s1.c$c.max_ms" "$(ms "$max")"
	fig "s1.c$c.gtx" "$pg_processed"
	fig "s1.c$c.logged_gtx" "$n"
	fig "s1.c$c.failed" "$pg_failed"
	fig "s1.c$c.db_confirmed" "$confirmed"
	fig "s1.c$c.db_cancelled" "$cancelled"
	fig "s1.c$c.db_other" "$other"
	fig "s1.c$c.confirm_lag_p50_ms" "${lag50:-null}"
	fig "s1.c$c.confirm_lag_p99_ms" "${lag99:-null}"
	fig "s1.c$c.worker_cpu_s" "$(calc "$w1 - $w0" 2)"
	fig "s1.c$c.try_p50_ms" "${try50:-null}"
	fig "s1.c$c.try_p99_ms" "${try99:-null}"
	worker_rss_fig "s1.c$c"
	# cross-checks: every committed pgbench transaction is one confirmed gid
	[ "$confirmed" = "$pg_processed" ] ||
		anomaly "S1 c=$c: pgbench committed $pg_processed transactions but $confirmed gids of kind $kind are confirmed"
	[ "$n" = "$pg_processed" ] ||
		anomaly "S1 c=$c: pgbench reported $pg_processed transactions, its log holds $n"
	[ "$other" = 0 ] || anomaly "S1 c=$c: $other gids of kind $kind are neither confirmed nor cancelled"
done
if grep -qw 32 <<<"$CLIENTS"; then
	show_waits s1_c32 "S1 c=32"
	pgss_top s1_c32_before s1_c32_after "during S1 c=32" 10
	s4_p50=$(awk -F'\t' '$1 == "s1.c32.confirm_lag_p50_ms" { print $2 }' "$FIGURES")
	s4_p99=$(awk -F'\t' '$1 == "s1.c32.confirm_lag_p99_ms" { print $2 }' "$FIGURES")
	echo
	echo "==== S4 confirm lag during S1 c=32 (decided_at to finished_at in tcc.transactions)"
	echo "  p50 $s4_p50 ms  p99 $s4_p99 ms"
	fig s4.source "S1 c=32"
	fig s4.p50_ms "$s4_p50"
	fig s4.p99_ms "$s4_p99"
fi

# ---------------------------------------------------------------- S1b

echo
echo "==== S1b one statement: BEGIN; SELECT tcc_run(2 branches); COMMIT (32 clients, ${DURATION}s)"
run_pgbench s1b 32 "$(script run)" -T "$DURATION" -D kind=s1b
wait_settled s1b 60
read -r n p50 p99 mean max <<<"$(col_stats 3 "$LOGDIR"/s1b.[0-9]*)"
confirmed=$(q "SELECT count(*) FROM tcc._gtx WHERE kind = 's1b' AND status = 'confirmed'")
printf '  c=32  %9s gtx/s  latency p50 %s ms  p99 %s ms  (%s gtx, %s failed; db: %s confirmed)\n' \
	"$(calc "$pg_tps" 1)" "$(ms "$p50")" "$(ms "$p99")" "$pg_processed" "$pg_failed" "$confirmed"
fig s1b.clients 32
fig s1b.gtx_per_s "$(calc "$pg_tps" 1)"
fig s1b.p50_ms "$(ms "$p50")"
fig s1b.p99_ms "$(ms "$p99")"
fig s1b.gtx "$pg_processed"
fig s1b.failed "$pg_failed"
fig s1b.db_confirmed "$confirmed"
[ "$confirmed" = "$pg_processed" ] ||
	anomaly "S1b: pgbench committed $pg_processed transactions but $confirmed gids of kind s1b are confirmed"

# ---------------------------------------------------------------- S1c

echo
echo "==== S1c three participants answering in 50 ms: $S1C_GTX x tcc_run vs $S1C_GTX x three tcc_branch (1 client)"
/usr/bin/python3 bench/slowstub.py --port "$SLOW_PORT" --delay-ms 50 \
	</dev/null >>"$TMP/slowstub.log" 2>&1 &
slow_pid=$!
for _ in $(seq 1 100); do
	port_busy "$SLOW_PORT" && break
	sleep 0.05
done
port_busy "$SLOW_PORT" || die "the slow stub did not start on port $SLOW_PORT"
run_pgbench s1c_run 1 "$(script slow_run)" -t "$S1C_GTX" -D kind=s1c
run_pgbench s1c_seq 1 "$(script slow_seq)" -t "$S1C_GTX" -D kind=s1c
wait_settled s1c 60
stop_process "$slow_pid"
slow_pid=
read -r rn rp50 rp99 _ <<<"$(col_stats 3 "$LOGDIR"/s1c_run.[0-9]*)"
read -r sn sp50 sp99 _ <<<"$(col_stats 3 "$LOGDIR"/s1c_seq.[0-9]*)"
printf '  %-34s p50 %8s ms  p99 %8s ms  (n=%s)\n' \
	"tcc_run, three tries at once" "$(ms "$rp50")" "$(ms "$rp99")" "$rn" \
	"three tcc_branch, one by one" "$(ms "$sp50")" "$(ms "$sp99")" "$sn"
fig s1c.gtx "$S1C_GTX"
fig s1c.run_p50_ms "$(ms "$rp50")"
fig s1c.run_p99_ms "$(ms "$rp99")"
fig s1c.seq_p50_ms "$(ms "$sp50")"
fig s1c.seq_p99_ms "$(ms "$sp99")"
confirmed=$(q "SELECT count(*) FROM tcc._gtx WHERE kind = 's1c' AND status = 'confirmed'")
[ "$confirmed" = $((2 * S1C_GTX)) ] ||
	anomaly "S1c: $((2 * S1C_GTX)) transactions but $confirmed gids of kind s1c are confirmed"

# ---------------------------------------------------------------- S2

echo
echo "==== S2 try overhead: $S2_CALLS sequential tcc_branch on one gid vs plain libcurl POSTs"
s2_gid=$(app_q "SELECT tcc_begin(interval '1 hour', 's2')") || die "S2: tcc_begin failed"
"$TMP/plainpost" "$STUB/s2/try" "$S2_CALLS" >"$LOGDIR/s2_plain.txt" ||
	anomaly "S2: plainpost failed"
run_pgbench s2_branch 1 "$(script branch)" -t "$S2_CALLS" -D gid="$s2_gid"
run_pgbench s2_select1 1 "$(script select1)" -t "$S2_CALLS"
# breakdown: the same calls inside ONE transaction (psql, \timing), so the
# caller's commit -- which must flush WAL, tcc_branch having written the
# try's row -- is not part of each call
s2x_gid=$(app_q "SELECT tcc_begin(interval '1 hour', 's2')") || die "S2: tcc_begin failed"
{
	printf '%s\n' '\timing on'
	echo 'BEGIN;'
	for _ in $(seq 1 "$S2_CALLS"); do
		echo "SELECT tcc_branch('$s2x_gid', '$STUB/s2/try', '$STUB/s2/confirm', '$STUB/s2/cancel', '{\"amount\": 1}');"
	done
	echo 'COMMIT;'
} >"$TMP/s2_in_xact.sql"
app_sql -f "$TMP/s2_in_xact.sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sed '1d;$d' |
	awk '{ printf "%.1f\n", $1 * 1000 }' >"$LOGDIR/s2_in_xact.txt" ||
	anomaly "S2: tcc_branch in one transaction failed"
read -r pn pp50 pp99 pmean _ <<<"$(col_stats 1 "$LOGDIR/s2_plain.txt")"
read -r bn bp50 bp99 bmean _ <<<"$(col_stats 3 "$LOGDIR"/s2_branch.[0-9]*)"
read -r xn xp50 xp99 xmean _ <<<"$(col_stats 1 "$LOGDIR/s2_in_xact.txt")"
read -r sn sp50 sp99 smean _ <<<"$(col_stats 3 "$LOGDIR"/s2_select1.[0-9]*)"
ov50=$(calc "$bp50 - $pp50" 0)
ov99=$(calc "$bp99 - $pp99" 0)
printf '  %-34s p50 %8s us  p99 %8s us  mean %8s us  (n=%s)\n' \
	"plain libcurl POST" "$pp50" "$pp99" "$pmean" "$pn" \
	"tcc_branch, autocommit (pgbench)" "$bp50" "$bp99" "$bmean" "$bn" \
	"tcc_branch, one transaction (psql)" "$xp50" "$xp99" "$xmean" "$xn" \
	"SELECT 1 (pgbench, context)" "$sp50" "$sp99" "$smean" "$sn"
echo "  tcc_branch (autocommit) minus plain POST: p50 +${ov50} us  p99 +${ov99} us;" \
	"in one transaction: p50 +$(calc "$xp50 - $pp50" 0) us  p99 +$(calc "$xp99 - $pp99" 0) us"
fig s2.calls "$S2_CALLS"
fig s2.plain_post.p50_us "$pp50"
fig s2.plain_post.p99_us "$pp99"
fig s2.plain_post.mean_us "$pmean"
fig s2.tcc_branch.p50_us "$bp50"
fig s2.tcc_branch.p99_us "$bp99"
fig s2.tcc_branch.mean_us "$bmean"
fig s2.tcc_branch_in_xact.p50_us "$xp50"
fig s2.tcc_branch_in_xact.p99_us "$xp99"
fig s2.tcc_branch_in_xact.mean_us "$xmean"
fig s2.select1.p50_us "$sp50"
fig s2.select1.p99_us "$sp99"
fig s2.overhead_p50_us "$ov50"
fig s2.overhead_p99_us "$ov99"
fig s2.overhead_in_xact_p50_us "$(calc "$xp50 - $pp50" 0)"
fig s2.overhead_in_xact_p99_us "$(calc "$xp99 - $pp99" 0)"
branches=$(q "SELECT count(*) FROM tcc.branches WHERE gid = '$s2_gid'")
[ "$branches" = "$S2_CALLS" ] ||
	anomaly "S2: $S2_CALLS tcc_branch calls but gid $s2_gid has $branches branches"
branches=$(q "SELECT count(*) FROM tcc.branches WHERE gid = '$s2x_gid'")
[ "$branches" = "$S2_CALLS" ] ||
	anomaly "S2: $S2_CALLS tcc_branch calls in one transaction but gid $s2x_gid has $branches branches"
[ "$xn" = "$S2_CALLS" ] || anomaly "S2: $S2_CALLS calls in one transaction, $xn timings"
# confirm the S2 gids (their branches one after the other) before moving on
app_q "SELECT tcc_finish('$s2_gid')" >/dev/null || anomaly "S2: tcc_finish failed"
app_q "SELECT tcc_finish('$s2x_gid')" >/dev/null || anomaly "S2: tcc_finish failed"
wait_settled s2 120
worker_rss_fig s2

# ---------------------------------------------------------------- S3

# Creates N tried, undecided two-branch transactions of a kind, from
# $PREPARE_CLIENTS sessions.  Sets prepared (the count) and prepare_s.
prepare_gtx() {
	local kind=$1 n=$2 per t0
	per=$(((n + PREPARE_CLIENTS - 1) / PREPARE_CLIENTS))
	t0=$(now)
	run_pgbench "$kind" "$PREPARE_CLIENTS" "$(script prepare)" -t "$per" -D kind="$kind"
	prepare_s=$(calc "$(now) - $t0" 2)
	prepared=$(q "SELECT count(*) FROM tcc.transactions WHERE kind = '$kind' AND status = 'trying'")
	echo "  prepared $prepared tried, undecided two-branch transactions in ${prepare_s}s" \
		"($(calc "$prepared / $prepare_s" 0) gtx/s from $PREPARE_CLIENTS sessions)"
}

# Decides every trying transaction of a kind in ONE transaction, so all the
# decisions become visible at its COMMIT.  Sets decided, decide_s and
# committed_at (server clock just after COMMIT, epoch seconds).
decide_all() {
	local kind=$1 out t0
	t0=$(now)
	out=$(app_sql -F ' ' <<EOF
BEGIN;
SELECT count(*) FILTER (WHERE tcc_finish(gid) = 'confirming')
  FROM tcc.transactions WHERE kind = '$kind' AND status = 'trying';
COMMIT;
SELECT extract(epoch FROM clock_timestamp());
EOF
	) || die "deciding the $kind transactions failed: $out"
	decided=$(sed -n 1p <<<"$out")
	committed_at=$(sed -n 2p <<<"$out")
	decide_s=$(calc "$committed_at - $t0" 2)
}

echo
echo "==== S3 worker drain: $S3_GTX decided two-branch transactions ready at once"
prepare_gtx s3 "$S3_GTX"
fig s3.prepare_s "$prepare_s"
pgss_snap s3_before
w0=$(worker_cpu)
start_sampling s3 $((DRAIN_TIMEOUT + 60))
wal0=$(wal_snap)
cpu_a=$(host_cpu)
decide_all s3
echo "  decided $decided in one transaction (${decide_s}s including COMMIT); draining..."
# the worker's memory a moment into the drain (it answers from inside a pass)
sleep "$(calc "0.15 * $S3_GTX / 4000" 2)"
mem_mid=$(worker_memory s3_mid)
wait_settled s3 "$DRAIN_TIMEOUT"
cpu_b=$(host_cpu)
stop_sampling s3
w1=$(worker_cpu)
sleep 1.1
wal1=$(wal_snap)
pgss_snap s3_after
fig s3.gtx "$decided"
wal_figs s3 "$decided" "$wal0" "$wal1"
host_figs s3 "$cpu_a" "$cpu_b"
drain_s=$(calc "$(last_finished s3) - $committed_at" 3)
IFS='|' read -r s3_confirmed s3_other first_s last_s calls ok_calls bad_calls <<<"$(q "
	WITH g AS (SELECT gid, status FROM tcc.transactions WHERE kind = 's3'),
	     a AS (SELECT a.* FROM tcc.attempts a JOIN g USING (gid) WHERE a.op = 'confirm')
	SELECT (SELECT count(*) FROM g WHERE status = 'confirmed'),
	       (SELECT count(*) FROM g WHERE status <> 'confirmed'),
	       round((extract(epoch FROM min(started_at)) - $committed_at)::numeric, 3),
	       round((extract(epoch FROM max(started_at + duration_ms * interval '1 ms')) - $committed_at)::numeric, 3),
	       count(*),
	       count(*) FILTER (WHERE http_status BETWEEN 200 AND 299),
	       count(*) FILTER (WHERE http_status IS NULL OR http_status NOT BETWEEN 200 AND 299)
	  FROM a")"
calls_per_s=$(calc "$ok_calls / $drain_s" 0)
echo "  drained in ${drain_s}s: $s3_confirmed confirmed, $s3_other not; $ok_calls confirm calls ok," \
	"$bad_calls failed -> $calls_per_s phase-two calls/s"
echo "  first confirm started ${first_s}s after COMMIT, last answered at ${last_s}s;" \
	"worker cpu $(calc "$w1 - $w0" 2)s; WAL per gtx $wal_bytes_per_gtx bytes, $wal_syncs_per_gtx flushes"
echo "  machine cpu $host_busy% busy ($host_steal% steal) over $NPROC cores"
fig s3.decide_s "$decide_s"
fig s3.drain_s "$drain_s"
fig s3.phase2_calls "$ok_calls"
fig s3.phase2_calls_per_s "$calls_per_s"
fig s3.failed_calls "$bad_calls"
fig s3.first_call_after_s "$first_s"
fig s3.last_call_done_s "$last_s"
fig s3.confirmed "$s3_confirmed"
fig s3.worker_cpu_s "$(calc "$w1 - $w0" 2)"
worker_rss_fig s3
fig s3.worker_memory_contexts_mid_drain_bytes "${mem_mid:-null}"
echo "  worker memory contexts $(calc "0.15 * $S3_GTX / 4000" 2)s into the drain: ${mem_mid:-?} bytes; largest:" \
	"$(awk '{ n = $1; $1 = ""; printf "%s%s %d kB", (NR > 1 ? "," : ""), $0, n / 1024 }' "$TMP/memory.s3_mid")"
[ "$s3_confirmed" = "$decided" ] ||
	anomaly "S3: $decided decided, $s3_confirmed confirmed"
[ "$ok_calls" = $((2 * decided)) ] ||
	anomaly "S3: $((2 * decided)) confirm calls expected, $ok_calls succeeded ($calls attempts)"
show_waits s3 "the S3 drain"
pgss_top s3_before s3_after "during the S3 decision and drain" 10

# ---------------------------------------------------------------- S5

echo
echo "==== S5 recovery: $S5_GTX transactions decide while the stub refuses connections"
prepare_gtx s5 "$S5_GTX"
q "ALTER SYSTEM SET tcc.retry_interval = '200ms'" >/dev/null
q "ALTER SYSTEM SET tcc.retry_max_interval = '2s'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
echo "  ALTER SYSTEM SET tcc.retry_interval = '200ms', tcc.retry_max_interval = '2s'; reloaded"
fig s5.retry_interval_ms 200
fig s5.retry_max_interval_ms 2000
sleep 0.5
stop_nginx
port_busy "$STUB_PORT" && anomaly "S5: something still listens on port $STUB_PORT"
down_at=$(now)
decide_all s5
echo "  stub stopped; decided $decided in one transaction; waiting for every gid to fail at least once"
outage_limit=$(calc "$S5_OUTAGE + 120" 0)
while :; do
	failing=$(PGAPPNAME=bench_poll q "SELECT count(DISTINCT a.gid) FROM tcc._attempt a
	            JOIN tcc._gtx g USING (gid) WHERE g.kind = 's5' AND a.op = 'confirm'")
	elapsed=$(calc "$(now) - $down_at" 1)
	if [ "$failing" -ge "$decided" ] && awk "BEGIN { exit !($elapsed >= $S5_OUTAGE) }"; then
		break
	fi
	if awk "BEGIN { exit !($elapsed >= $outage_limit) }"; then
		anomaly "S5: after ${elapsed}s only $failing of $decided gids had a confirm attempt"
		break
	fi
	sleep 0.2
done
start_nginx
up_at=$(now)
outage_s=$(calc "$up_at - $down_at" 2)
failed_during=$(q "SELECT count(*) FROM tcc._attempt a JOIN tcc._gtx g USING (gid)
                    WHERE g.kind = 's5' AND a.op = 'confirm'")
echo "  stub back after ${outage_s}s ($failed_during failed confirm attempts); settling..."
wait_settled s5 "$DRAIN_TIMEOUT"
settle_s=$(calc "$(last_finished s5) - $up_at" 3)
IFS='|' read -r s5_confirmed s5_failed s5_other max_attempts total_attempts ok_after <<<"$(q "
	WITH g AS (SELECT gid, status FROM tcc.transactions WHERE kind = 's5')
	SELECT (SELECT count(*) FROM g WHERE status = 'confirmed'),
	       (SELECT count(*) FROM g WHERE status = 'failed'),
	       (SELECT count(*) FROM g WHERE status NOT IN ('confirmed', 'failed')),
	       (SELECT max(b.attempts) FROM tcc.branches b JOIN g USING (gid)),
	       (SELECT count(*) FROM tcc.attempts a JOIN g USING (gid) WHERE a.op = 'confirm'),
	       (SELECT count(*) FROM tcc.attempts a JOIN g USING (gid)
	         WHERE a.op = 'confirm' AND a.http_status BETWEEN 200 AND 299)")"
echo "  settled ${settle_s}s after the stub came back: $s5_confirmed confirmed, $s5_failed failed," \
	"$s5_other other; $total_attempts confirm attempts ($ok_after ok), at most $max_attempts per branch"
q "ALTER SYSTEM RESET tcc.retry_interval" >/dev/null
q "ALTER SYSTEM RESET tcc.retry_max_interval" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
echo "  ALTER SYSTEM RESET of both; reloaded"
fig s5.gtx "$decided"
fig s5.outage_s "$outage_s"
fig s5.failed_attempts_in_outage "$failed_during"
fig s5.settle_s "$settle_s"
fig s5.confirmed "$s5_confirmed"
fig s5.failed "$s5_failed"
fig s5.confirm_attempts "$total_attempts"
fig s5.max_attempts_per_branch "$max_attempts"
worker_rss_fig s5
[ "$s5_confirmed" = "$decided" ] ||
	anomaly "S5: $decided decided, $s5_confirmed confirmed, $s5_failed failed, $s5_other other"
[ "$ok_after" = $((2 * decided)) ] ||
	anomaly "S5: $((2 * decided)) successful confirm calls expected, $ok_after seen"

run_s6

# ---------------------------------------------------------------- end of run

pgss_snap end
read -r cpu1 rss1 anon1 <<<"$(proc_usage "$WORKER_PID")"
pid_end=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tcc coordinator'")
fig worker.pid_end "${pid_end:-null}"
fig worker.cpu_s_end "$cpu1"
fig worker.rss_kb_end "$rss1"
fig worker.rss_anon_kb_end "$anon1"
mem1=$(worker_memory end)
fig worker.memory_contexts_bytes_end "${mem1:-null}"
[ "$pid_end" = "$WORKER_PID" ] ||
	anomaly "the worker's pid changed from $WORKER_PID to ${pid_end:-none}: it restarted"

echo
echo "==== health"
IFS='|' read -r pending attention failed total <<<"$(q "
	SELECT (SELECT count(*) FROM tcc.pending), (SELECT count(*) FROM tcc.attention),
	       (SELECT count(*) FROM tcc.transactions WHERE status = 'failed'),
	       (SELECT count(*) FROM tcc.transactions)")"
echo "  transactions: $total in all, $pending pending, $attention needing attention, $failed failed"
fig health.transactions "$total"
fig health.pending "$pending"
fig health.attention "$attention"
fig health.failed "$failed"
echo "  worker: pid $WORKER_PID -> ${pid_end:-none}; cpu ${cpu0}s -> ${cpu1}s;" \
	"rss ${rss0} -> ${rss1} kB (anon ${anon0} -> ${anon1} kB)"
echo "  worker memory contexts: ${mem0:-?} -> ${mem1:-?} bytes; largest at the end:" \
	"$(awk '{ n = $1; $1 = ""; printf "%s%s %d kB", (NR > 1 ? "," : ""), $0, n / 1024 }' "$TMP/memory.end")"
echo "  tcc tables (size with indexes; updates, of them HOT; dead rows; autovacuums):"
sql -F $'\t' -c "
	SELECT s.relname, pg_size_pretty(pg_total_relation_size(s.relid)), s.n_tup_upd, s.n_tup_hot_upd,
	       s.n_dead_tup, s.autovacuum_count
	  FROM pg_stat_user_tables s WHERE s.schemaname = 'tcc' AND s.n_tup_ins > 0
	 ORDER BY s.relname" | while IFS=$'\t' read -r rel size upd hot dead av; do
	printf '    %-10s %8s  %8s updates, %8s HOT; %8s dead; %s autovacuums\n' \
		"$rel" "$size" "$upd" "$hot" "$dead" "$av"
	fig "health.tables.$rel.updates" "$upd"
	fig "health.tables.$rel.hot_updates" "$hot"
	fig "health.tables.$rel.dead_rows" "$dead"
	fig "health.tables.$rel.autovacuums" "$av"
done
echo "  indexes of tcc._branch: $(q "SELECT string_agg(format('%s %s', c.relname,
	pg_size_pretty(pg_relation_size(c.oid))), ', ' ORDER BY c.relname)
	FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE i.indrelid = 'tcc._branch'::regclass")"
[ "$pending" = 0 ] || anomaly "$pending transactions still pending at the end"
[ "$failed" = 0 ] || anomaly "$failed transactions failed"

problems=$(grep -E '(ERROR|FATAL|PANIC|WARNING): |terminated by signal|exited with exit code' "$PGLOG" || true)
nproblems=$(grep -c . <<<"$problems" || true)
[ -z "$problems" ] && nproblems=0
fig health.server_log_problems "$nproblems"
if [ "$nproblems" -gt 0 ]; then
	anomaly "$nproblems ERROR/WARNING/FATAL lines or worker exits in the server log"
	echo "  server log, first distinct problems:"
	sed -E 's/^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] //' <<<"$problems" | sort | uniq -c |
		sort -rn | head -n 10 | sed 's/^/    /'
else
	echo "  server log: no ERROR, WARNING, FATAL or worker exit"
fi
echo "  checkpoints during the run: $(grep -c 'checkpoint complete' "$PGLOG" || true)"

if [ "$PGSS" = 1 ]; then
	echo
	echo "==== where time goes over the whole run"
	pgss_top start end "whole run" 15
fi

# ---------------------------------------------------------------- table

# Prints a row: label, figure, unit, target text, met (true/false/empty).
row() {
	local verdict=""
	[ "$5" = true ] && verdict="met"
	[ "$5" = false ] && verdict="MISSED"
	printf '%-34s %12s %-8s %-14s %s\n' "$1" "$2" "$3" "$4" "$verdict"
}

# Checks a figure against a target: target NAME VALUE OP LIMIT.
target() {
	local met=false
	if [ "$2" != null ] && [ -n "$2" ] && awk "BEGIN { exit !($2 $3 $4) }"; then
		met=true
	fi
	fig "targets.$1.value" "${2:-null}"
	fig "targets.$1.target" "$3 $4"
	fig "targets.$1.met" "$met"
	echo "$met"
}

get() {
	awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "null" : v) }' "$FIGURES"
}

echo
echo "==== results ($MODE mode; the machine may be shared: figures are noisy)"
row scenario value unit target ""
for c in $CLIENTS; do
	met=""
	[ "$c" = 32 ] && met=$(target s1_c32_gtx_per_s "$(get s1.c32.gtx_per_s)" '>=' $TARGET_S1_GTX_PER_S)
	row "S1 c=$c throughput" "$(get "s1.c$c.gtx_per_s")" gtx/s \
		"$([ "$c" = 32 ] && echo ">= $TARGET_S1_GTX_PER_S")" "$met"
	row "S1 c=$c latency p50" "$(get "s1.c$c.p50_ms")" ms "" ""
	row "S1 c=$c latency p99" "$(get "s1.c$c.p99_ms")" ms "" ""
done
met=$(target s1b_gtx_per_s "$(get s1b.gtx_per_s)" '>=' $TARGET_S1B_GTX_PER_S)
row "S1b tcc_run c=32 throughput" "$(get s1b.gtx_per_s)" gtx/s ">= $TARGET_S1B_GTX_PER_S" "$met"
row "S1b tcc_run c=32 latency p50" "$(get s1b.p50_ms)" ms "" ""
met=$(target s1c_run_p50_ms "$(get s1c.run_p50_ms)" '<=' $TARGET_S1C_RUN_P50_MS)
row "S1c tcc_run, 3 x 50 ms, p50" "$(get s1c.run_p50_ms)" ms "<= $TARGET_S1C_RUN_P50_MS" "$met"
row "S1c 3 x tcc_branch, p50" "$(get s1c.seq_p50_ms)" ms "" ""
row "S2 plain POST p50 / p99" "$(get s2.plain_post.p50_us) / $(get s2.plain_post.p99_us)" us "" ""
row "S2 tcc_branch p50 / p99" "$(get s2.tcc_branch.p50_us) / $(get s2.tcc_branch.p99_us)" us "" ""
row "S2 same, in one transaction" "$(get s2.tcc_branch_in_xact.p50_us) / $(get s2.tcc_branch_in_xact.p99_us)" us "" ""
met=$(target s2_overhead_p50_us "$(get s2.overhead_p50_us)" '<=' $TARGET_S2_OVERHEAD_P50_US)
row "S2 overhead p50" "+$(get s2.overhead_p50_us)" us "<= $TARGET_S2_OVERHEAD_P50_US" "$met"
row "S2 overhead p99" "+$(get s2.overhead_p99_us)" us "" ""
row "S3 drain of $(get s3.gtx) gtx" "$(get s3.drain_s)" s "" ""
row "S3 first confirm after COMMIT" "$(get s3.first_call_after_s)" s "" ""
met=$(target s3_phase2_calls_per_s "$(get s3.phase2_calls_per_s)" '>=' $TARGET_S3_CALLS_PER_S)
row "S3 phase-two calls" "$(get s3.phase2_calls_per_s)" calls/s ">= $TARGET_S3_CALLS_PER_S" "$met"
row "S4 confirm lag p50 (S1 c=32)" "$(get s4.p50_ms)" ms "" ""
met=$(target s4_p99_ms "$(get s4.p99_ms)" '<=' $TARGET_S4_P99_MS)
row "S4 confirm lag p99 (S1 c=32)" "$(get s4.p99_ms)" ms "<= $TARGET_S4_P99_MS" "$met"
row "S5 settle after stub restart" "$(get s5.settle_s)" s "" ""
row "S5 outage / failed attempts" "$(get s5.outage_s) / $(get s5.failed_attempts_in_outage)" "s / n" "" ""
row "S6 confirm lag p50 quiet / noisy" "$(get s6.quiet.confirm_lag_p50_ms) / $(get s6.noisy.confirm_lag_p50_ms)" ms "" ""
row "S6 confirm lag p99 quiet / noisy" "$(get s6.quiet.confirm_lag_p99_ms) / $(get s6.noisy.confirm_lag_p99_ms)" ms "" ""
row "worker cpu start / end" "$cpu0 / $cpu1" s "" ""
row "worker rss start / end" "$rss0 / $rss1" kB "" ""
row "anomalies" "${#anomalies[@]}" "" "" ""
for a in "${anomalies[@]+"${anomalies[@]}"}"; do
	echo "  - $a"
done

fig finished_at "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fig host.load_1min_end "$(cut -d' ' -f1 /proc/loadavg)"
echo
print_json
