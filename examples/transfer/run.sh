#!/usr/bin/env bash
# examples/transfer/run.sh - the transfer example, start to finish.
#
#   bash examples/transfer/run.sh [--keep]
#
# A transfers money to B.  A's account is in database bank1, B's in bank2,
# each behind its own participant service (bank.py); the initiator is
# transfer.sql, run with psql in the coordinator database coord.
#
# Runs test/setup.sh first (Debian packages, build, install; needs root),
# unless TCC_SKIP_SETUP=1.  Then creates a throwaway cluster on 127.0.0.1
# (port TCC_DEMO_PORT, default 25399) holding coord, bank1 and bank2, starts
# the two services (ports TCC_DEMO_BANK1_PORT and TCC_DEMO_BANK2_PORT,
# default 18201 and 18202) and the operations console (console/app.py, port
# TCC_DEMO_CONSOLE_PORT, default 18203; it prints the URL and a login), runs
# five scenarios, and stops and removes everything again, also on failure or
# interrupt.  The last line is
#   RESULT bank1.A=<balance>/<frozen> bank2.B=<balance>/<frozen> <key>=<status>...
# With --keep (or TCC_DEMO_KEEP=1) it then leaves the cluster, the services
# and the console running until Ctrl-C.

set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# stop_process, port_busy, as_postgres, wait_pidfile; cluster_*
. "$ROOT/test/proc.sh"
. "$ROOT/test/cluster.sh"

PGBIN=${TCC_PGROOT:-}/usr/lib/postgresql/15/bin
PYTHON=/usr/bin/python3
PORT=${TCC_DEMO_PORT:-25399}
BANK_PORT[1]=${TCC_DEMO_BANK1_PORT:-18201}
BANK_PORT[2]=${TCC_DEMO_BANK2_PORT:-18202}
BANK_ROLE[1]=a
BANK_ROLE[2]=b
CONSOLE_PORT=${TCC_DEMO_CONSOLE_PORT:-18203}
KEEP=${TCC_DEMO_KEEP:-0}
# the role that runs the transfers, and logs in to the console
APP_ROLE=app
APP_PASSWORD=app

for arg in "$@"; do
	case "$arg" in
	--keep) KEEP=1 ;;
	*) echo "usage: $0 [--keep]" >&2; exit 2 ;;
	esac
done

export LC_ALL=C LANG=C PYTHONDONTWRITEBYTECODE=1
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS \
	PGPASSWORD PGSSLMODE TRANSFER_BETWEEN

die() {
	echo "run.sh: $*" >&2
	exit 1
}

# ---------------------------------------------------------------- setup

if [ "${TCC_SKIP_SETUP:-}" != 1 ]; then
	echo "==> test/setup.sh: Debian packages, build and install of tcc"
	bash "$ROOT/test/setup.sh" || die "setup failed"
fi
[ -f "$("$PGBIN/pg_config" --sharedir)/extension/tcc.control" ] ||
	die "tcc is not installed (run without TCC_SKIP_SETUP=1)"

for p in "$PORT" "${BANK_PORT[1]}" "${BANK_PORT[2]}" "$CONSOLE_PORT"; do
	port_busy "$p" && die "port $p is in use (see TCC_DEMO_PORT," \
		"TCC_DEMO_BANK1_PORT, TCC_DEMO_BANK2_PORT and TCC_DEMO_CONSOLE_PORT)"
done

cluster_scratch tcc-demo || die "mktemp failed"
PGDATA_DIR=$TMP/data
BANK_PID[1]= BANK_PID[2]=
CONSOLE_PID=
failed=1
interrupted=0

# Stop everything this script started and remove the scratch directory.
cleanup() {
	trap - EXIT INT TERM
	if [ $failed = 1 ] && [ $interrupted = 0 ]; then
		for f in "$TMP/server.log" "$TMP/bank1.log" "$TMP/bank2.log" \
			"$TMP/console.log"; do
			[ -s "$f" ] || continue
			echo "---- tail of $(basename "$f")"
			tail -n 20 "$f"
		done
	fi
	stop_console
	stop_bank 1
	stop_bank 2
	cluster_stop_all
	rm -rf "$TMP"
	[ $failed = 1 ] && exit 1
	exit 0
}
trap cleanup EXIT
trap 'interrupted=1; echo "run.sh: interrupted, stopping" >&2; exit 1' INT TERM

# ---------------------------------------------------------------- helpers

# psql on database $1 of the demo cluster, as postgres through the Unix
# socket in $TMP (see pg_hba.conf below).
psql_db() {
	local db=$1
	shift
	"$PGBIN/psql" -X -h "$TMP" -p "$PORT" -U postgres -d "$db" \
		-P footer=off "$@"
}

# The value of one query on database $1.
value() {
	psql_db "$1" -Atq -v ON_ERROR_STOP=1 -c "$2"
}

# Start bank $1's service and wait until it listens.
start_bank() {
	local n=$1 pidfile=$TMP/bank$1.pid
	rm -f "$pidfile"
	"$PYTHON" "$HERE/bank.py" --port "${BANK_PORT[$n]}" --role "${BANK_ROLE[$n]}" \
		--dsn "host=$TMP port=$PORT dbname=bank$n user=postgres" \
		--pidfile "$pidfile" >>"$TMP/bank$n.log" 2>&1 </dev/null &
	BANK_PID[$n]=$!
	wait_pidfile "${BANK_PID[$n]}" "$pidfile" 10 ||
		die "bank$n's service did not start"
}

# Stop bank $1's service (if running) and wait until it has exited.
stop_bank() {
	stop_process "${BANK_PID[$1]}"
	BANK_PID[$1]=
}

# Start the operations console on coord and wait until it listens.
start_console() {
	local pidfile=$TMP/console.pid
	"$PYTHON" "$ROOT/console/app.py" --port "$CONSOLE_PORT" \
		--db "host=127.0.0.1 port=$PORT dbname=coord" \
		--pidfile "$pidfile" >>"$TMP/console.log" 2>&1 </dev/null &
	CONSOLE_PID=$!
	wait_pidfile "$CONSOLE_PID" "$pidfile" 10 || die "the console did not start"
}

# Stop the console (if running) and wait until it has exited.
stop_console() {
	stop_process "$CONSOLE_PID"
	CONSOLE_PID=
}

# Wait up to $2 seconds until query $1 on coord returns t.
wait_for() {
	local deadline=$((SECONDS + $2))
	while [ "$(value coord "$1")" != t ]; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}

# A heading.
section() {
	echo
	echo "=================================================================="
	echo " $*"
	echo "=================================================================="
}

# Text for the reader, indented.
say() {
	echo "$@" | sed 's/^/  /'
}

# Run the initiator: transfer.sql (or the file $4) with business key $1,
# amount $2 from account 1 to account $3.
transfer() {
	local file=${4:-transfer.sql}
	echo
	say "\$ psql -d coord -v key=$1 -v from=1 -v to=$3 -v amount=$2 -f $file"
	(cd "$HERE" && PGPASSWORD=$APP_PASSWORD "$PGBIN/psql" -X -h 127.0.0.1 \
		-p "$PORT" -U "$APP_ROLE" -d coord -P footer=off \
		-v key="$1" -v from=1 -v to="$3" \
		-v amount="$2" -v bank1="http://127.0.0.1:${BANK_PORT[1]}" \
		-v bank2="http://127.0.0.1:${BANK_PORT[2]}" -f "$file" 2>&1) |
		sed 's/^/  | /'
}

# Wait for the global transaction with business key $1 to be final and
# check that it is $2.
expect_status() {
	local got
	got=$(value coord "SELECT tcc_wait(gid, '30 s') FROM tcc.transactions
	                    WHERE business_key = '$1'")
	[ "$got" = "$2" ] || die "transaction $1 is '$got', expected '$2'"
}

# The balances of A and B.
balances() {
	echo
	printf '  %-6s %-8s %-5s %10s %10s\n' bank account name balance frozen
	for n in 1 2; do
		value "bank$n" "SELECT id, name, balance, frozen FROM accounts ORDER BY id" |
			while IFS='|' read -r id name balance frozen; do
				printf '  %-6s %-8s %-5s %10s %10s\n' "bank$n" "$id" "$name" \
					"$balance" "$frozen"
			done
	done
}

# The coordinator's views: all transactions, and the branches and HTTP
# calls of the one with business key $1.
views() {
	psql_db coord -q -v key="$1" <<'SQL' | sed 's/^/  /'
\echo
\echo 'tcc.transactions'
SELECT business_key AS key, status, decided_by, attempts,
       coalesce(regexp_replace(last_error, ' after [0-9]+ ms', ''), '')
           AS last_error
  FROM tcc.transactions
 ORDER BY created_at;
\echo 'tcc.branches of' :key
SELECT b.branch, b.name, b.status, b.attempts,
       b.last_http_status AS http,
       coalesce(regexp_replace(b.last_error, ' after [0-9]+ ms', ''), '')
           AS last_error
  FROM tcc.branches b JOIN tcc.transactions t USING (gid)
 WHERE t.business_key = :'key'
 ORDER BY b.branch;
\echo 'tcc.attempts of' :key
SELECT a.branch, a.op,
       round(extract(epoch FROM a.started_at - t.created_at)::numeric, 2) AS at,
       coalesce(round(extract(epoch FROM a.started_at
                              - lag(a.started_at) OVER w)::numeric, 2)::text,
                '') AS gap,
       round(a.duration_ms::numeric) AS ms,
       coalesce(a.http_status::text, '') AS http,
       coalesce(regexp_replace(a.error, ' after [0-9]+ ms', ''), '') AS error
  FROM tcc.attempts a JOIN tcc.transactions t USING (gid)
 WHERE t.business_key = :'key'
WINDOW w AS (PARTITION BY a.branch, a.op ORDER BY a.started_at)
 ORDER BY a.started_at;
\echo '(at: seconds after tcc_begin; gap: seconds since the previous attempt of the same call)'
SQL
}

# Seconds until the next attempt of the transaction with business key $1.
due_in() {
	value coord "SELECT round(extract(epoch FROM next_attempt_at - now())::numeric, 1)
	               FROM tcc.transactions WHERE business_key = '$1'"
}

# Seconds from time $2 to the end of the transaction with business key $1.
since() {
	value coord "SELECT round(extract(epoch FROM finished_at - '$2')::numeric, 1)
	               FROM tcc.transactions WHERE business_key = '$1'"
}

# Wait until bank2's confirm of transaction $1 failed $2 times.
wait_failed_confirms() {
	wait_for "SELECT count(*) >= $2 FROM tcc.attempts a JOIN tcc.transactions t USING (gid)
	           WHERE t.business_key = '$1' AND a.branch = 2 AND a.op = 'confirm'
	             AND a.http_status IS DISTINCT FROM 200" 30 ||
		die "bank2's confirm of $1 did not fail $2 times"
}

# ---------------------------------------------------------------- cluster

echo "==> a throwaway cluster in $TMP, port $PORT:"
# The databases exist before the first start, so the coordinator worker
# finds tcc.database at once.
cluster_init "$PGDATA_DIR" "$PORT" "transfer example (examples/transfer/run.sh)" \
	"coord bank1 bank2" --no-sync || die "$CLUSTER_ERROR"
cluster_conf "$PGDATA_DIR" <<EOF
fsync = off
shared_preload_libraries = 'tcc'
tcc.database = 'coord'
# short retry gaps, so that the demo shows them quickly (default 10s)
tcc.retry_interval = '500ms'
# the socket in $TMP: only root and the postgres OS user may open it
unix_socket_permissions = 0700
EOF
# Every connection over TCP (the console's logins, the initiator's psql)
# must give its role's password: postgres has none, so it cannot log in
# there.  This script and the banks' services connect through the socket.
cat >"$PGDATA_DIR/pg_hba.conf" <<EOF || die "pg_hba.conf could not be written"
# examples/transfer/run.sh
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
EOF
cat <<EOF
      shared_preload_libraries = 'tcc'
      tcc.database = 'coord'
      tcc.retry_interval = '500ms'    # the default is 10s; short for the demo
EOF

cluster_start "$PGDATA_DIR" "$TMP/server.log" 60 || die "the cluster did not start"

psql_db coord -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION tcc' ||
	die "CREATE EXTENSION tcc in coord failed"
# the initiator's role: it runs transfer.sql and logs in to the console,
# with its password (pg_hba.conf asks every role for one over TCP); it sees
# its own transactions only
psql_db coord -q -v ON_ERROR_STOP=1 -v role="$APP_ROLE" -v pw="$APP_PASSWORD" <<'SQL' ||
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
GRANT USAGE ON SCHEMA tcc TO :"role";
GRANT EXECUTE ON FUNCTION
    tcc_begin(interval, text, text, boolean, text, text),
    tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text, interval, integer, boolean),
    tcc_branches(uuid, jsonb),
    tcc_run(jsonb, interval, text, text, boolean, text, text),
    tcc_finish(uuid, boolean), tcc_wait(uuid, interval),
    tcc_retry(uuid), tcc_resolve(uuid, text), tcc_worker_state() TO :"role";
GRANT SELECT ON tcc.transactions, tcc.transaction_list, tcc.branches,
    tcc.attempts, tcc.actions, tcc.pending, tcc.attention, tcc.stats,
    tcc.worker, tcc.activity TO :"role";
SQL
	die "creating the role $APP_ROLE failed"
(cd "$HERE" &&
	psql_db bank1 -q -v ON_ERROR_STOP=1 -v id=1 -v name=A -v balance=1000.00 \
		-f bank.sql &&
	psql_db bank2 -q -v ON_ERROR_STOP=1 -v id=2 -v name=B -v balance=0.00 \
		-f bank.sql) || die "creating the banks failed"
echo "==> databases: coord (the coordinator), bank1 (A's account, id 1), bank2 (B's account, id 2)"

start_bank 1
start_bank 2
echo "==> services (bank.py): bank1 on http://127.0.0.1:${BANK_PORT[1]}, bank2 on http://127.0.0.1:${BANK_PORT[2]}"
start_console
CONSOLE_URL=http://127.0.0.1:$CONSOLE_PORT/
echo "==> operations console: $CONSOLE_URL  (log in as role $APP_ROLE, password $APP_PASSWORD)"
echo
echo "The balances before the first transfer:"
balances

# ---------------------------------------------------------------- 1

section "1. A transfers 10.00 to B"
say "Both tries hold the money (bank1 moves it from A's balance to frozen,
bank2 puts it in B's frozen; tcc_branch shows each bank's answer), the
initiator decides with tcc_finish and COMMIT, and the coordinator's
worker confirms both branches."
transfer demo-1 10.00 2
expect_status demo-1 confirmed
balances
views demo-1

echo
say "The same request again, with the same business key: tcc_begin refuses
it with SQLSTATE 23505, so nothing is transferred twice."
transfer demo-1 10.00 2
balances

# ---------------------------------------------------------------- 2

section "2. A transfers 10.00 to account 3, which does not exist"
say "bank1's try holds A's money; bank2 refuses its try with HTTP 409, so
tcc_branch raises SQLSTATE TC001.  The initiator rolls back, and the
coordinator cancels branch 1: A's money comes back."
transfer demo-2 10.00 3
expect_status demo-2 cancelled
balances
views demo-2

# ---------------------------------------------------------------- 3

# transfer.sql runs this between the tries and tcc_finish (see there).
STOP_BANK2="$PYTHON $HERE/bank.py --stop --pidfile $TMP/bank2.pid && echo '-- bank2 service stopped --'"

section "3. bank2's service goes down before the confirm"
say "Both tries succeed; then bank2's service stops, and the initiator
commits its decision.  bank1 is confirmed at once; bank2's confirm fails,
and the worker retries it with growing gaps (tcc.retry_interval 500ms,
doubling each time)."
export TRANSFER_BETWEEN=$STOP_BANK2
transfer demo-3 10.00 2
unset TRANSFER_BETWEEN
stop_bank 2
wait_failed_confirms demo-3 4
echo
say "Four failed confirms later, the transaction is still confirming:"
views demo-3
balances
echo
say "B's 10.00 is frozen: tried, not confirmed.  Now bank2's service comes
back.  Nobody acts: the next attempt is due in $(due_in demo-3) s."
start_bank 2
back=$(value coord "SELECT clock_timestamp()")
expect_status demo-3 confirmed
say "Confirmed on its own, $(since demo-3 "$back") s after bank2 came back."
views demo-3
balances

# ---------------------------------------------------------------- 4

section "4. The same outage, and an operator who speeds it up"
say "Another transfer, and bank2's service stops again between the tries
and the decision."
export TRANSFER_BETWEEN=$STOP_BANK2
transfer demo-4 10.00 2
unset TRANSFER_BETWEEN
stop_bank 2
wait_failed_confirms demo-4 4
start_bank 2
echo
say "bank2 failed four confirms and is back, but the worker's next attempt
is only due in $(due_in demo-4) s (the gaps keep doubling, up to
tcc.retry_max_interval).  An operator who knows the service is back makes
the pending confirm due now, and it is recorded in tcc.actions:"
echo
say "\$ psql -d coord"
retried=$(value coord "SELECT clock_timestamp()")
psql_db coord <<'SQL' 2>&1 | sed 's/^/  | /'
\set ECHO queries
SELECT tcc_retry(gid) FROM tcc.transactions WHERE business_key = 'demo-4';
SELECT tcc_wait(gid, '10 s') FROM tcc.transactions WHERE business_key = 'demo-4';
SELECT a.action, a.actor, a.applied
  FROM tcc.actions a JOIN tcc.transactions t USING (gid)
 WHERE t.business_key = 'demo-4';
SQL
expect_status demo-4 confirmed
say "Confirmed $(since demo-4 "$retried") s after tcc_retry."
views demo-4
balances

# ---------------------------------------------------------------- 5

section "5. The same transfer in one statement: tcc_run"
say "transfer_run.sql hands both branches to tcc_run: one durable write
records them, both tries go out at once (see their start times below), and
the confirm decision is part of the initiator's transaction: its COMMIT
confirms."
transfer demo-5 10.00 2 transfer_run.sql
expect_status demo-5 confirmed
balances
views demo-5

# ---------------------------------------------------------------- result

a=$(value bank1 "SELECT balance || '/' || frozen FROM accounts WHERE id = 1")
b=$(value bank2 "SELECT balance || '/' || frozen FROM accounts WHERE id = 2")
statuses=$(value coord "SELECT string_agg(business_key || '=' || status, ' '
                                          ORDER BY business_key)
                          FROM tcc.transactions")
if [ "$KEEP" = 1 ]; then
	echo
	echo "==> still running (--keep): the console at $CONSOLE_URL (role $APP_ROLE,"
	echo "    password $APP_PASSWORD), the cluster on 127.0.0.1:$PORT.  Ctrl-C stops everything."
else
	echo
	echo "==> the console ($CONSOLE_URL) stops with the example; run with --keep to keep it"
fi
echo
echo "RESULT bank1.A=$a bank2.B=$b $statuses"
failed=0
if [ "$KEEP" = 1 ]; then
	trap 'exit 0' INT TERM
	while kill -0 "$CONSOLE_PID" 2>/dev/null; do
		sleep 1
	done
	echo "run.sh: the console stopped" >&2
	exit 1
fi
