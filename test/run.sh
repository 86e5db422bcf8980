#!/usr/bin/env bash
# test/run.sh - the one test command for tcc.
#
#   bash test/run.sh                      all suites: regress, pgtap,
#                                         integration, workers
#   bash test/run.sh regress pgtap        some suites
#   bash test/run.sh sql/install.sql test/integration/t010_worker.py
#                                         single files (a bare name, e.g.
#                                         "install", is a regress test)
#
# Unless TCC_SKIP_SETUP=1, first runs test/setup.sh (Debian packages, make,
# make install).  Then creates a throwaway cluster with tcc preloaded
# (port TCC_TEST_PORT, default 25329), starts the test participant (port
# TCC_TP_PORT, default 18080), runs the suites and removes everything again,
# also when a test fails or the run is interrupted.  Run it as root.
#
# The suite "workers" comes last: it restarts the cluster with tcc.workers =
# WORKERS (several coordinator workers per database) and runs the fault
# tests of R1-R6 (docs/guarantees.md) again, with TCC_TEST_WORKERS set (the
# clusters of test/integration/clusterlib.py get the same setting).

set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
. "$ROOT/test/proc.sh"
. "$ROOT/test/cluster.sh"

PGBIN=${TCC_PGROOT:-}/usr/lib/postgresql/15/bin
PG_CONFIG=$PGBIN/pg_config
PORT=${TCC_TEST_PORT:-25329}
TP_PORT=${TCC_TP_PORT:-18080}
PYTHON=/usr/bin/python3
# the suite "workers": coordinator workers per database, and the fault
# tests it runs again with them (the integration files of these numbers)
WORKERS=3
WORKERS_TESTS="t010 t030 t060 t100 t110 t140 t200 t210 t220 t230 t235 t240
	t250 t260 t265 t270 t440 t500 t510"

export LC_ALL=C LANG=C PYTHONDONTWRITEBYTECODE=1
unset PGSERVICE PGOPTIONS PGPASSWORD PGSSLMODE PGHOSTADDR

die() {
	echo "run.sh: $*" >&2
	exit 2
}

# ---------------------------------------------------------------- arguments

run_regress=0 run_pgtap=0 run_integration=0 run_workers=0
regress_tests=() pgtap_files=() integration_files=() workers_files=()

for arg in "$@"; do
	case "$arg" in
	regress) run_regress=1 ;;
	pgtap) run_pgtap=1 ;;
	integration) run_integration=1 ;;
	workers) run_workers=1 ;;
	test/pgtap/*.sql)
		[ -f "$arg" ] || die "no such file: $arg"
		pgtap_files+=("$arg") ;;
	test/integration/*.py)
		[ -f "$arg" ] || die "no such file: $arg"
		integration_files+=("$arg") ;;
	sql/*.sql | expected/*.out | [a-z0-9_]*)
		name=$(basename "$arg")
		name=${name%.sql}
		name=${name%.out}
		[ -f "sql/$name.sql" ] || die "no such regress test: $arg"
		regress_tests+=("$name") ;;
	*) die "unknown suite or test file: $arg (suites: regress pgtap integration workers)" ;;
	esac
done

if [ $# -eq 0 ]; then
	run_regress=1 run_pgtap=1 run_integration=1 run_workers=1
fi
if [ $run_regress = 1 ]; then
	regress_tests=()
	for f in $(ls sql/*.sql 2>/dev/null | sort); do
		regress_tests+=("$(basename "$f" .sql)")
	done
fi
if [ $run_pgtap = 1 ]; then
	pgtap_files=($(ls test/pgtap/*.sql 2>/dev/null | sort))
fi
if [ $run_integration = 1 ]; then
	integration_files=($(ls test/integration/t[0-9]*.py 2>/dev/null | sort))
fi
if [ $run_workers = 1 ]; then
	for n in $WORKERS_TESTS; do
		f=$(ls test/integration/${n}_*.py 2>/dev/null | head -n 1)
		[ -n "$f" ] || die "suite workers: no integration test $n"
		workers_files+=("$f")
	done
fi
[ ${#regress_tests[@]} -gt 0 ] && run_regress=1
[ ${#pgtap_files[@]} -gt 0 ] && run_pgtap=1
[ ${#integration_files[@]} -gt 0 ] && run_integration=1

# ---------------------------------------------------------------- setup

if [ "${TCC_SKIP_SETUP:-}" != 1 ]; then
	bash test/setup.sh || die "setup failed"
fi

port_busy "$PORT" && die "port $PORT is in use (set TCC_TEST_PORT)"
port_busy "$TP_PORT" && die "port $TP_PORT is in use (set TCC_TP_PORT)"

cluster_scratch tcc-test || die "mktemp failed"
PGDATA_DIR=$TMP/data
PGLOG=$TMP/server.log
TP_LOG=$TMP/participant.log
TP_PIDFILE=$TMP/participant.pid
REGRESS_OUT=$TMP/regress
tp_pid=
suite_pid=
failed_files=0
passed_files=0
status=0

# After a failure: the tail of the server and participant logs and the
# regression diffs (once).
logs_shown=0
show_logs() {
	[ $logs_shown = 1 ] && return
	logs_shown=1
	if [ -f "$PGLOG" ]; then
		echo "---- tail of the server log"
		tail -n 60 "$PGLOG"
	fi
	if [ -s "$TP_LOG" ]; then
		echo "---- tail of the participant log"
		tail -n 30 "$TP_LOG"
	fi
	if [ -s "$REGRESS_OUT/regression.diffs" ]; then
		echo "---- regression.diffs"
		head -n 300 "$REGRESS_OUT/regression.diffs"
	fi
}

# Stop everything this script started and remove the scratch directory.
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ $status = 0 ] && [ $rc != 0 ] && status=$rc
	[ $status != 0 ] && show_logs
	if [ -n "$suite_pid" ]; then
		kill -TERM -- "-$suite_pid" 2>/dev/null
		wait "$suite_pid" 2>/dev/null
	fi
	stop_process "$tp_pid"
	cluster_stop_all
	rm -rf "$TMP"
	exit $status
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM

# ---------------------------------------------------------------- cluster

echo "run.sh: cluster in $TMP, port $PORT"
# The databases exist before the first start, so the coordinator workers
# find the databases of tcc.database at once.  tcc_test and tcc_test2 are
# coordinator databases, each with its own worker; tcc_other is not one.
cluster_init "$PGDATA_DIR" "$PORT" "test cluster (test/run.sh)" \
	"tcc_test tcc_test2 tcc_other" --no-sync || {
	status=1
	die "$CLUSTER_ERROR"
}
cluster_conf "$PGDATA_DIR" <<EOF
max_connections = 100
fsync = off
log_line_prefix = '%m [%p] %q%b %a: '
EOF
# what the regression tests expect of the server (make installcheck)
cluster_conf "$PGDATA_DIR" <test/regress.conf

if ! cluster_start "$PGDATA_DIR" "$PGLOG" 60; then
	status=1
	die "the test cluster did not start"
fi

export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGDATABASE=tcc_test
export TCC_PGDATA=$PGDATA_DIR TCC_PGBIN=$PGBIN TCC_PGLOG=$PGLOG
export TCC_TP_PORT=$TP_PORT TCC_TEST_DIR=$TMP

psql_quiet() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}
psql_quiet -d tcc_test -c 'CREATE EXTENSION tcc' -c 'CREATE EXTENSION pgtap' || {
	status=1
	die "creating the extensions in tcc_test failed"
}
psql_quiet -d tcc_test2 -c 'CREATE EXTENSION tcc' || {
	status=1
	die "creating the extension in tcc_test2 failed"
}

# ---------------------------------------------------------------- participant

"$PYTHON" test/participant.py --port "$TP_PORT" --pidfile "$TP_PIDFILE" \
	--dsn "host=127.0.0.1 port=$PORT dbname=tcc_test user=postgres" \
	>"$TP_LOG" 2>&1 </dev/null &
tp_pid=$!
for _ in $(seq 1 300); do
	[ -f "$TP_PIDFILE" ] && break
	kill -0 "$tp_pid" 2>/dev/null || break
	sleep 0.05
done
if [ ! -f "$TP_PIDFILE" ]; then
	status=1
	die "the test participant did not start"
fi

# ---------------------------------------------------------------- suites

summary=()

# Record one suite's file counts: suite passed failed.
count() {
	passed_files=$((passed_files + $2))
	failed_files=$((failed_files + $3))
	summary+=("$(printf '%-12s %3d passed, %d failed' "$1:" "$2" "$3")")
	[ "$3" = 0 ] || status=1
}

# Run a suite's command, its output also saved to file $1, in its own process
# group so that an interrupt stops it at once (see cleanup).
run_suite() {
	local out=$1 rc
	shift
	set -m
	("$@" 2>&1 | tee "$out"; exit "${PIPESTATUS[0]}") &
	suite_pid=$!
	set +m
	wait "$suite_pid"
	rc=$?
	suite_pid=
	return $rc
}

# Failed files in prove / pg_prove output ("Test Summary Report" entries).
prove_failures() {
	sed -n '/^Test Summary Report/,$p' "$1" | grep -c ' (Wstat: '
}

if [ $run_regress = 1 ] && [ ${#regress_tests[@]} -gt 0 ]; then
	echo "==== regress: ${regress_tests[*]}"
	mkdir -p "$REGRESS_OUT"
	run_suite "$TMP/regress.out" \
		make -s --no-print-directory -C "$ROOT" PG_CONFIG="$PG_CONFIG" \
		installcheck REGRESS="${regress_tests[*]}" \
		EXTRA_REGRESS_OPTS="--outputdir=$REGRESS_OUT"
	ok=$(grep -cE '^(test|     ) *[a-z0-9_]+ +\.\.\. ok' "$TMP/regress.out")
	count regress "$ok" $((${#regress_tests[@]} - ok))
fi

if [ $run_pgtap = 1 ] && [ ${#pgtap_files[@]} -gt 0 ]; then
	echo "==== pgtap: ${pgtap_files[*]}"
	run_suite "$TMP/pgtap.out" \
		pg_prove --psql-bin "$PGBIN/psql" --nocolor --failures --comments \
		-h 127.0.0.1 -p "$PORT" \
		-U postgres -d tcc_test "${pgtap_files[@]}"
	rc=$?
	bad=$(prove_failures "$TMP/pgtap.out")
	if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		bad=${#pgtap_files[@]}
	fi
	count pgtap $((${#pgtap_files[@]} - bad)) "$bad"
fi

if [ $run_integration = 1 ] && [ ${#integration_files[@]} -gt 0 ]; then
	echo "==== integration: ${integration_files[*]}"
	run_suite "$TMP/integration.out" \
		prove --nocolor --exec "$PYTHON" "${integration_files[@]}"
	rc=$?
	bad=$(prove_failures "$TMP/integration.out")
	if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		bad=${#integration_files[@]}
	fi
	count integration $((${#integration_files[@]} - bad)) "$bad"
fi

if [ $run_workers = 1 ] && [ ${#workers_files[@]} -gt 0 ]; then
	echo "==== workers (tcc.workers = $WORKERS): ${workers_files[*]}"
	cluster_conf "$PGDATA_DIR" <<EOF

# ---- suite workers (test/run.sh)
tcc.workers = $WORKERS
EOF
	if cluster_restart "$PGDATA_DIR" "$PGLOG" 60 &&
		[ "$("$PGBIN/psql" -X -A -t -d tcc_test -c 'SHOW tcc.workers')" = "$WORKERS" ]; then
		export TCC_TEST_WORKERS=$WORKERS
		run_suite "$TMP/workers.out" \
			prove --nocolor --exec "$PYTHON" "${workers_files[@]}"
		rc=$?
		bad=$(prove_failures "$TMP/workers.out")
		if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
			bad=${#workers_files[@]}
		fi
	else
		echo "run.sh: the test cluster did not restart with tcc.workers = $WORKERS"
		bad=${#workers_files[@]}
	fi
	count workers $((${#workers_files[@]} - bad)) "$bad"
fi

[ $status != 0 ] && show_logs
echo
echo "==== summary (counting test files)"
for line in "${summary[@]}"; do
	echo "$line"
done
echo "$passed_files passed, $failed_files failed"
exit $status
