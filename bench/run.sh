#!/usr/bin/env bash
# bench/run.sh - the tcc benchmark.
#
#   bash bench/run.sh                 full run (about 25-30 minutes; S8 alone
#                                     is 10 of them)
#   BENCH_QUICK=1 bash bench/run.sh   quick run (about 4-5 minutes)
#
# Run as root from anywhere.  Unless TCC_SKIP_SETUP=1 it installs what it
# needs (nginx from Debian, plus what test/setup.sh installs) and builds and
# installs the extension (test/setup.sh).  It then creates a throwaway
# cluster as the postgres user (test/cluster.sh; port BENCH_PORT, default
# 25419) and runs the benchmark program, bench/tccbench (Debian's python3
# with python3-psycopg): it starts Debian's nginx as a stub participant on
# 127.0.0.1 (port BENCH_STUB_PORT, default 18480; a slow stub for S1c on the
# next port), measures the baseline (pgbench -b simple-update at 32 clients
# in a database of its own), runs the scenarios S1-S11 (with S1b, S1c; S10
# installs DTM's server with Go from the module proxy), prints a table and
# every throughput as a ratio to the baseline, and ends with ONE JSON line
# holding every figure.  Everything it started is
# stopped again, also on failure or interrupt.  See bench/README.md.
#
# Settings (environment):
#   BENCH_SECONDS      duration of each S1 run (default 15, quick 5)
#   BENCH_CLIENTS      S1 client counts (default "1 8 32"; S4 uses 32)
#   BENCH_S2_CALLS     S2 calls of each kind (default 2000, quick 500)
#   BENCH_S1C_GTX      S1c transactions of each kind (default 200, quick 40)
#   BENCH_S3_GTX       S3 global transactions (default 20000, quick 4000)
#   BENCH_S5_GTX       S5 global transactions (default 10000, quick 2000)
#   BENCH_S11_GTX      S11 global transactions whose deadlines pass together
#                      (default 10000, quick 2000)
#   BENCH_BASELINE=0   no pgbench baseline (and no ratios to it)
#   BENCH_S5_OUTAGE    S5 minimum stub outage in seconds (default 5, quick 3)
#   BENCH_S6_SECONDS   duration of each S6 run (default 15, quick 5)
#   BENCH_S6_HANG      S6 transactions stuck at the hanging participant
#                      (default 1000)
#   BENCH_HANG_PORT    port of S6's hanging participant (default stub + 2)
#   BENCH_S7_PENDING   S7 pending confirms (default 1000000, quick 20000)
#   BENCH_S7_OUTAGE    S7 minimum participant outage in seconds (default 30,
#                      quick 10)
#   BENCH_S8_SECONDS   S8 duration (default 600, quick 60)
#   BENCH_S8_INTERVAL  S8 seconds between samples (default 15, quick 10)
#   BENCH_S8_WARMUP    S8 seconds before the first compared minute (default
#                      60, quick 20)
#   BENCH_S9_ROWS      S9 kept transactions generated (default 10000000,
#                      quick 1000000)
#   BENCH_S10_SECONDS  S10 load per coordinator (default 15, quick 5)
#   BENCH_S10_OUTAGE   S10 confirm endpoint outage in seconds (default 10)
#   BENCH_S10_CLIENTS  S10 Go clients (default 32)
#   BENCH_S10_CONFIRM_PORT  S10's confirm stub (default stub + 3)
#   BENCH_DTM_VERSION  the DTM release S10 installs (default v1.19.0; needs
#                      go1.25+ and the Go module proxy, else S10 is skipped)
#   BENCH_ONLY=s6      run only the named scenarios (s1 s1b s1c s2 s3 s11 s5
#                      s6 s10 s7 s8 s9; space or comma separated), after the
#                      baseline, then the JSON line
#   BENCH_SOAK=1       instead of S1-S8: the soak (bench/soak.sh), full load
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
. "$ROOT/test/cluster.sh"

PGBIN=${TCC_PGROOT:-}/usr/lib/postgresql/15/bin
PORT=${BENCH_PORT:-25419}
STUB_PORT=${BENCH_STUB_PORT:-18480}
SLOW_PORT=$((STUB_PORT + 1))
MODE=full
[ "${BENCH_QUICK:-0}" = 1 ] && MODE=quick
PGSS=${BENCH_PGSS:-1}
SYNC_STANDBY=${BENCH_SYNC_STANDBY:-0}

export LC_ALL=C LANG=C PYTHONDONTWRITEBYTECODE=1
unset PGSERVICE PGOPTIONS PGPASSWORD PGSSLMODE PGHOSTADDR PGDATABASE

TMP=
PGLOG=
error_message=
status=0
bench_pid=
CLUSTER_STOP_TIMEOUT=60

die() {
	echo "bench: $*" >&2
	error_message=$*
	status=1
	exit 1
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

# Stop everything this script started; print the JSON line if the program
# did not (it failed before it ran); remove the scratch directory.
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ $status = 0 ] && [ $rc != 0 ] && status=$rc
	if [ -n "$bench_pid" ]; then
		# the program stops its stubs and prints the JSON line
		kill -TERM "$bench_pid" 2>/dev/null
		wait "$bench_pid" 2>/dev/null
	fi
	if [ $status != 0 ] && { [ -z "$TMP" ] || [ ! -f "$TMP/json_printed" ]; }; then
		if [ -n "$PGLOG" ] && [ -f "$PGLOG" ]; then
			echo "---- tail of the server log (memory context dumps left out)"
			grep -v 'LOG:  level: ' "$PGLOG" | tail -n 40
		fi
		[ -n "$error_message" ] || error_message="run failed (exit $status)"
		printf '{"bench":"tcc","mode":"%s","anomalies":[],"error":%s}\n' \
			"$MODE" "$(json_string "$error_message")"
	fi
	cluster_stop_all
	if [ -z "$TMP" ]; then
		:
	elif [ "${BENCH_KEEP:-}" = 1 ]; then
		echo "bench: kept $TMP"
	else
		rm -rf "$TMP"
	fi
	exit $status
}
trap cleanup EXIT
trap 'error_message=interrupted; status=130; exit 130' INT TERM

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
/usr/bin/python3 -c 'import psycopg' 2>/dev/null ||
	die "python3-psycopg is missing (run without TCC_SKIP_SETUP=1)"
[ "$(id -u)" = 0 ] || die "run as root (the cluster runs as postgres, nginx as root)"
TCC_SO=$("$PGBIN/pg_config" --pkglibdir)/tcc.so
[ -f "$TCC_SO" ] || die "$TCC_SO is missing (run without TCC_SKIP_SETUP=1)"

port_busy "$PORT" && die "port $PORT is in use (set BENCH_PORT)"
port_busy "$STUB_PORT" && die "port $STUB_PORT is in use (set BENCH_STUB_PORT)"
port_busy "$SLOW_PORT" && die "port $SLOW_PORT is in use (the slow stub takes BENCH_STUB_PORT + 1)"

cluster_scratch tcc-bench "${BENCH_DIR:-/tmp}" || die "mktemp failed"
PGDATA_DIR=$TMP/data
PGLOG=$TMP/server.log

export BENCH_COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
export BENCH_STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export BENCH_TCC_SO_SHA256=$(sha256sum "$TCC_SO" | cut -c1-16)
export BENCH_LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

gcc -O2 -Wall -Wextra -Werror -o "$TMP/plainpost" bench/plainpost.c -lcurl ||
	die "building bench/plainpost.c failed"

# ---------------------------------------------------------------- cluster

echo "bench: cluster in $TMP, port $PORT ($MODE mode)"
cluster_init "$PGDATA_DIR" "$PORT" "benchmark cluster (bench/run.sh)" bench ||
	die "$CLUSTER_ERROR"
preload=tcc
[ "$PGSS" = 1 ] && preload=tcc,pg_stat_statements
cluster_conf "$PGDATA_DIR" <<EOF
max_connections = 200
shared_buffers = '1GB'
# durability is part of the product (docs/guarantees.md): nothing here is relaxed
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
cluster_start "$PGDATA_DIR" "$PGLOG" 120 || die "the benchmark cluster did not start"

# A synchronous standby on loopback (BENCH_SYNC_STANDBY=1): what a
# synchronous HA pair adds to every intent and decision.
if [ "$SYNC_STANDBY" = 1 ]; then
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
	cluster_start "$STANDBY_DIR" "$TMP/standby.log" 120 immediate ||
		die "the standby did not start"
	PSQL=("$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)
	"${PSQL[@]}" -c "ALTER SYSTEM SET synchronous_standby_names = 'bench_standby'" \
		-c "SELECT pg_reload_conf()" >/dev/null || die "setting synchronous_standby_names failed"
	state=
	for _ in $(seq 1 300); do
		state=$("${PSQL[@]}" -c "SELECT sync_state FROM pg_stat_replication
		                         WHERE application_name = 'bench_standby'")
		[ "$state" = sync ] && break
		sleep 0.1
	done
	[ "$state" = sync ] || die "the standby did not become synchronous"
	echo "bench: synchronous standby on port $((PORT + 1))"
fi

# ---------------------------------------------------------------- the program

export BENCH_ROOT=$ROOT BENCH_TMP=$TMP BENCH_PGBIN=$PGBIN BENCH_PGDATA=$PGDATA_DIR
export BENCH_PGLOG=$PGLOG BENCH_PORT=$PORT BENCH_STUB_PORT=$STUB_PORT
export BENCH_PGSS=$PGSS BENCH_SYNC_STANDBY=$SYNC_STANDBY
# in the background, so that a signal reaches this script's trap at once
(cd "$ROOT/bench" && exec /usr/bin/python3 -m tccbench) </dev/null &
bench_pid=$!
wait "$bench_pid"
status=$?
bench_pid=
exit $status
