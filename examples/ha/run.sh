#!/usr/bin/env bash
# examples/ha/run.sh - tcc under Patroni, a failover under load, start to finish.
#
#   bash examples/ha/run.sh
#
# Starts, all on 127.0.0.1:
#   - one etcd (the DCS Patroni keeps its leader lock in);
#   - two PostgreSQL nodes managed by Patroni, node1 and node2, with tcc
#     preloaded, the coordinator database coord and synchronous_mode on (the
#     standby is a synchronous standby);
#   - the transfer example's two banks (examples/transfer/bank.py) on a
#     plain cluster of their own: the participants.
# Then runs transfers from several clients, kills the leader node (SIGKILL
# of its Patroni and of its postmaster, by pid: the node is gone), waits for
# Patroni to promote the other node, lets the clients go on against the new
# leader, and checks that the new leader settles every transaction: all
# final, every transfer whose COMMIT a client saw confirmed, no reservation
# left in either bank, no transfer both confirmed and cancelled at a bank,
# and the money of both banks adding up.  Finally the old leader rejoins as
# a standby (pg_rewind) and runs no coordinator.
#
# Installs what it needs first (test/setup.sh: Debian packages, among them
# patroni and etcd-server, and the build of tcc), unless TCC_SKIP_SETUP=1.  Stops everything it
# started by pid, also on failure or interrupt, and removes its files.
# Exits 0 only if every check passed; the last line is
#   RESULT ok|FAILED committed=<n> confirmed=<n> cancelled=<n> ...
#
# Ports (environment): TCC_HA_PG1, TCC_HA_PG2 (the nodes, 54391, 54392),
# TCC_HA_PG_BANKS (54393), TCC_HA_REST1, TCC_HA_REST2 (Patroni's REST API,
# 28001, 28002), TCC_HA_ETCD (etcd's client port, 23801; peer port + 1),
# TCC_HA_BANK1, TCC_HA_BANK2 (the banks' services, 18211, 18212).
# TCC_HA_LOAD_SECONDS (5): load before and after the failover.

set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

PGBIN=${TCC_PGROOT:-}/usr/lib/postgresql/15/bin
PYTHON=/usr/bin/python3
PG[1]=${TCC_HA_PG1:-54391}
PG[2]=${TCC_HA_PG2:-54392}
PG_BANKS=${TCC_HA_PG_BANKS:-54393}
REST[1]=${TCC_HA_REST1:-28001}
REST[2]=${TCC_HA_REST2:-28002}
ETCD=${TCC_HA_ETCD:-23801}
ETCD_PEER=$((ETCD + 1))
BANK_PORT[1]=${TCC_HA_BANK1:-18211}
BANK_PORT[2]=${TCC_HA_BANK2:-18212}
BANK_ROLE[1]=a
BANK_ROLE[2]=b
LOAD_SECONDS=${TCC_HA_LOAD_SECONDS:-5}
START_BALANCE=1000000.00

export LC_ALL=C LANG=C PYTHONDONTWRITEBYTECODE=1
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS \
	PGPASSWORD PGSSLMODE PGTARGETSESSIONATTRS

die() {
	echo "run.sh: $*" >&2
	exit 1
}

say() {
	echo
	echo "==> $*"
}

# ---------------------------------------------------------------- setup

if [ "${TCC_SKIP_SETUP:-}" != 1 ]; then
	say "test/setup.sh: Debian packages, build and install of tcc"
	bash "$ROOT/test/setup.sh" || die "setup failed"
fi
[ -f "$("$PGBIN/pg_config" --sharedir)/extension/tcc.control" ] ||
	die "tcc is not installed (run without TCC_SKIP_SETUP=1)"
command -v patroni >/dev/null || die "patroni is not installed"
command -v etcd >/dev/null || die "etcd is not installed"

# Is something listening on 127.0.0.1:$1?
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for p in "${PG[1]}" "${PG[2]}" "$PG_BANKS" "${REST[1]}" "${REST[2]}" \
	"$ETCD" "$ETCD_PEER" "${BANK_PORT[1]}" "${BANK_PORT[2]}"; do
	port_busy "$p" && die "port $p is in use (see the TCC_HA_* variables)"
done

TMP=$(mktemp -d /tmp/tcc-ha.XXXXXX) || die "mktemp failed"
chmod 755 "$TMP"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$TMP"
ETCD_PID='' PATRONI_PID[1]='' PATRONI_PID[2]='' BANK_PID[1]='' BANK_PID[2]='' LOAD_PID=''
banks_started=0
failed=1
interrupted=0

# Run a command as the postgres OS user (the server refuses to run as root).
as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		(cd "$TMP" && runuser -u postgres -- "$@")
	else
		(cd "$TMP" && "$@")
	fi
}

# Start a command in the background as postgres; its pid is $! (setpriv
# execs, so the pid is the command's own).
spawn_as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		(cd "$TMP" && exec setpriv --reuid=postgres --regid=postgres \
			--init-groups env HOME="$TMP" "$@") &
	else
		(cd "$TMP" && exec "$@") &
	fi
}

# Stop process $1 (a child of this shell): SIGTERM, up to 15 s, SIGKILL.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# The postmaster pid of node $1's data directory, if it runs.
node_postmaster() {
	local f=$TMP/node$1/data/postmaster.pid pid
	[ -f "$f" ] || return 1
	pid=$(head -n 1 "$f")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Stop everything this script started and remove the scratch directory.
cleanup() {
	local n pid
	trap - EXIT INT TERM
	if [ $failed = 1 ] && [ $interrupted = 0 ]; then
		for f in "$TMP"/node1/patroni.log "$TMP"/node2/patroni.log \
			"$TMP"/node1/data/log/*.log "$TMP"/node2/data/log/*.log \
			"$TMP"/banks.log "$TMP"/bank1.log "$TMP"/bank2.log \
			"$TMP"/etcd.log "$TMP"/load.log; do
			[ -s "$f" ] || continue
			echo "---- tail of ${f#"$TMP"/}"
			tail -n 15 "$f"
		done
	fi
	stop_pid "$LOAD_PID"
	# Patroni stops its PostgreSQL on SIGTERM; a postmaster left behind
	# (its Patroni was killed) is stopped by pid
	for n in 1 2; do
		stop_pid "${PATRONI_PID[$n]}"
		pid=$(node_postmaster $n) && {
			kill -QUIT "$pid" 2>/dev/null
			for _ in $(seq 1 100); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$pid" 2>/dev/null
		}
	done
	stop_pid "${BANK_PID[1]}"
	stop_pid "${BANK_PID[2]}"
	if [ $banks_started = 1 ]; then
		as_postgres "$PGBIN/pg_ctl" -D "$TMP/banks" -m fast -t 30 -w stop \
			>/dev/null 2>&1 ||
			as_postgres "$PGBIN/pg_ctl" -D "$TMP/banks" -m immediate -w stop \
				>/dev/null 2>&1
	fi
	stop_pid "$ETCD_PID"
	rm -rf "$TMP"
	[ $failed = 1 ] && exit 1
	exit 0
}
trap cleanup EXIT
trap 'interrupted=1; echo "run.sh: interrupted, stopping" >&2; exit 1' INT TERM

# psql on node $1 (or a port, with -p given), database $2.
psql_node() {
	local n=$1 db=$2
	shift 2
	"$PGBIN/psql" -X -h 127.0.0.1 -p "${PG[$n]}" -U postgres -d "$db" \
		-P footer=off "$@"
}

# One value from node $1, database $2.
value() {
	psql_node "$1" "$2" -Atq -v ON_ERROR_STOP=1 -c "$3" 2>/dev/null
}

# One value from the banks' cluster, database $1.
bank_value() {
	"$PGBIN/psql" -X -h 127.0.0.1 -p "$PG_BANKS" -U postgres -d "$1" \
		-Atq -v ON_ERROR_STOP=1 -c "$2"
}

# The HTTP status of a GET of $1 (000 if nothing answers).
http_status() {
	"$PYTHON" - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

# Wait up to $2 seconds until command $1 (a string, eval'ed) succeeds.
wait_for() {
	local deadline=$((SECONDS + $2))
	until eval "$1"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.2
	done
}

# How many tcc coordinator workers node $1 runs.
coordinators() {
	value "$1" coord "SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'tcc coordinator'"
}

# How many transactions on node $1 are not final.
not_final() {
	value "$1" coord "SELECT count(*) FROM tcc.transactions
		WHERE status NOT IN ('confirmed', 'cancelled')"
}

# Is node $1 Patroni's leader (read-write primary)?
is_leader() {
	[ "$(http_status "http://127.0.0.1:${REST[$1]}/primary")" = 200 ]
}

# Is node $1 a replica that streams from the leader as its synchronous standby?
is_sync_standby() {
	local other=$(($1 == 1 ? 2 : 1))
	[ "$(value "$other" postgres "SELECT sync_state FROM pg_stat_replication
		WHERE application_name = 'node$1' AND state = 'streaming'")" = sync ]
}

# ---------------------------------------------------------------- etcd

say "etcd on 127.0.0.1:$ETCD (the DCS: Patroni's leader lock and configuration)"
etcd --name tcc-ha --data-dir "$TMP/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD" \
	--advertise-client-urls "http://127.0.0.1:$ETCD" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
	--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
	--initial-cluster "tcc-ha=http://127.0.0.1:$ETCD_PEER" \
	--initial-cluster-state new >"$TMP/etcd.log" 2>&1 </dev/null &
ETCD_PID=$!
wait_for '[ "$(http_status "http://127.0.0.1:$ETCD/health")" = 200 ]' 30 ||
	die "etcd did not start"

# ---------------------------------------------------------------- banks

say "the banks: bank1 (A) and bank2 (B) on a plain cluster, port $PG_BANKS"
as_postgres "$PGBIN/initdb" -D "$TMP/banks" --auth=trust --username=postgres \
	--encoding=UTF8 --locale=C --no-sync >"$TMP/banks-initdb.log" 2>&1 ||
	die "initdb of the banks' cluster failed"
cat >>"$TMP/banks/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_BANKS
unix_socket_directories = '$TMP'
fsync = off
# tcc loaded at start as in examples/transfer; its coordinator idles, as
# database postgres has no extension (the banks use only the barrier)
shared_preload_libraries = 'tcc'
tcc.database = 'postgres'
EOF
as_postgres "$PGBIN/pg_ctl" -D "$TMP/banks" -l "$TMP/banks.log" -w -t 60 \
	start >/dev/null || die "the banks' cluster did not start"
banks_started=1
for n in 1 2; do
	"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PG_BANKS" -U postgres -d postgres \
		-v ON_ERROR_STOP=1 -c "CREATE DATABASE bank$n" >/dev/null ||
		die "CREATE DATABASE bank$n failed"
done
(cd "$ROOT/examples/transfer" &&
	"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PG_BANKS" -U postgres -d bank1 \
		-v ON_ERROR_STOP=1 -v id=1 -v name=A -v balance=$START_BALANCE \
		-f bank.sql &&
	"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PG_BANKS" -U postgres -d bank2 \
		-v ON_ERROR_STOP=1 -v id=2 -v name=B -v balance=0.00 -f bank.sql) \
	>/dev/null || die "creating the banks failed"
for n in 1 2; do
	rm -f "$TMP/bank$n.pid"
	"$PYTHON" "$ROOT/examples/transfer/bank.py" --port "${BANK_PORT[$n]}" \
		--role "${BANK_ROLE[$n]}" --pidfile "$TMP/bank$n.pid" \
		--dsn "host=127.0.0.1 port=$PG_BANKS dbname=bank$n user=postgres" \
		>"$TMP/bank$n.log" 2>&1 </dev/null &
	BANK_PID[$n]=$!
	wait_for "[ -f '$TMP/bank$n.pid' ]" 20 || die "bank$n's service did not start"
done
echo "    bank1 http://127.0.0.1:${BANK_PORT[1]}  bank2 http://127.0.0.1:${BANK_PORT[2]}"

# ---------------------------------------------------------------- Patroni

# Write node $1's Patroni configuration.
patroni_config() {
	local n=$1
	mkdir -p "$TMP/node$n"
	cat >"$TMP/node$n/patroni.yml" <<EOF
scope: tcc-ha
name: node$n

restapi:
  listen: 127.0.0.1:${REST[$n]}
  connect_address: 127.0.0.1:${REST[$n]}

etcd3:
  hosts: 127.0.0.1:$ETCD

bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    # the standby is synchronous: a failover loses no acknowledged commit
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        shared_preload_libraries: tcc
        tcc.database: coord
        tcc.retry_interval: 200ms
        tcc.retry_max_interval: 2s
        wal_log_hints: 'on'
        max_connections: 100
        fsync: 'off'
        logging_collector: 'on'
        log_line_prefix: '%m [%p] %q%b %a: '
  initdb:
    - encoding: UTF8
    - locale: C
  # the coordinator database, the extension and the clients' table
  post_bootstrap: sh $TMP/bootstrap.sh $PGBIN

postgresql:
  listen: 127.0.0.1:${PG[$n]}
  connect_address: 127.0.0.1:${PG[$n]}
  data_dir: $TMP/node$n/data
  bin_dir: $PGBIN
  pgpass: $TMP/node$n/pgpass
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: replicator
      password: replicator
    rewind:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: $TMP/node$n
  basebackup:
    - checkpoint: fast
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
EOF
	[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$TMP/node$n"
}

# Start node $1's Patroni.
start_node() {
	local n=$1
	spawn_as_postgres patroni "$TMP/node$n/patroni.yml" \
		>>"$TMP/node$n/patroni.log" 2>&1 </dev/null
	PATRONI_PID[$n]=$!
}

# Patroni runs as postgres, who may not be able to read the checkout
cp "$HERE/bootstrap.sh" "$TMP/bootstrap.sh"
chmod 644 "$TMP/bootstrap.sh"
patroni_config 1
patroni_config 2
say "Patroni node1 (PostgreSQL on ${PG[1]}, REST on ${REST[1]}): bootstraps the cluster"
t0=$SECONDS
start_node 1
wait_for "is_leader 1" 90 || die "node1 did not become the leader"
wait_for '[ "$(coordinators 1)" = 1 ]' 60 ||
	die "node1 runs no tcc coordinator"
echo "    node1 is the leader ($((SECONDS - t0)) s) and runs the tcc coordinator"

say "Patroni node2 (PostgreSQL on ${PG[2]}, REST on ${REST[2]}): a replica, made with pg_basebackup"
t0=$SECONDS
start_node 2
wait_for "is_sync_standby 2" 120 || die "node2 did not become the synchronous standby"
echo "    node2 streams from node1 as its synchronous standby ($((SECONDS - t0)) s)"
coord_on_2=$(coordinators 2)
echo "    tcc coordinators on node2, a standby: $coord_on_2"
checks_failed=0
check() {
	if eval "$2"; then
		echo "    ok: $1"
	else
		echo "    FAILED: $1"
		checks_failed=$((checks_failed + 1))
	fi
}
check "the standby runs no coordinator" '[ "$coord_on_2" = 0 ]'

# ---------------------------------------------------------------- load

DSN="host=127.0.0.1,127.0.0.1 port=${PG[1]},${PG[2]} dbname=coord user=postgres target_session_attrs=read-write"
say "transfers from 4 clients ($DSN)"
"$PYTHON" "$HERE/load.py" --dsn "$DSN" --clients 4 \
	--bank1 "http://127.0.0.1:${BANK_PORT[1]}" \
	--bank2 "http://127.0.0.1:${BANK_PORT[2]}" \
	--stop-file "$TMP/load.stop" --out "$TMP/load.json" \
	>"$TMP/load.log" 2>&1 </dev/null &
LOAD_PID=$!
sleep "$LOAD_SECONDS"
before=$(value 1 coord "SELECT count(*) FROM tcc.transactions")
echo "    $before transfers begun on node1 so far"
[ "${before:-0}" -gt 0 ] || die "no transfer got through"

# ---------------------------------------------------------------- failover

pm=$(node_postmaster 1) || die "node1's postmaster is not running"
say "node1 dies: SIGKILL of its Patroni (pid ${PATRONI_PID[1]}) and its postmaster (pid $pm)"
kill -KILL "${PATRONI_PID[1]}" "$pm"
wait "${PATRONI_PID[1]}" 2>/dev/null
PATRONI_PID[1]=
t0=$SECONDS
wait_for "is_leader 2" 90 || die "node2 did not take over"
echo "    node2 is the leader $((SECONDS - t0)) s later (the leader lock's ttl is 10 s)"
wait_for '[ "$(coordinators 2)" = 1 ]' 30 ||
	die "node2 runs no tcc coordinator"
echo "    node2 runs the tcc coordinator"
# a postmaster's children exit once they notice it is gone
wait_for "! node_postmaster 1 >/dev/null" 30 || die "node1's postmaster survived SIGKILL"

say "transfers go on against node2 for $LOAD_SECONDS s"
sleep "$LOAD_SECONDS"
touch "$TMP/load.stop"
wait "$LOAD_PID"
LOAD_PID=
cat "$TMP/load.log" | tail -n 1 | sed 's/^/    /'

# ---------------------------------------------------------------- checks

say "node2 settles every transaction"
t0=$SECONDS
wait_for '[ "$(not_final 2)" = 0 ]' 90 ||
	echo "    some transactions are not final after 90 s"
echo "    took $((SECONDS - t0)) s"
psql_node 2 coord -c "SELECT status, decided_by, count(*) FROM tcc.transactions GROUP BY 1, 2 ORDER BY 1, 2" | sed 's/^/    /'

"$PYTHON" - "$TMP/load.json" >"$TMP/committed.csv" <<'EOF'
import json, sys
for gid, key, amount in json.load(open(sys.argv[1]))["committed"]:
    print("%s,%s,%s" % (gid, key, amount))
EOF
committed=$(wc -l <"$TMP/committed.csv")
result=$(psql_node 2 coord -Atq -v ON_ERROR_STOP=1 <<EOF
CREATE TEMP TABLE seen (gid uuid, business_key text, amount numeric);
\copy seen FROM '$TMP/committed.csv' WITH (FORMAT csv)
SELECT count(*) FILTER (WHERE t.status IS DISTINCT FROM 'confirmed'),
       count(*) FILTER (WHERE w.gid IS NULL)
  FROM seen s
  LEFT JOIN tcc.transactions t USING (gid)
  LEFT JOIN transfers w USING (gid);
EOF
)
not_confirmed=${result%%|*}
no_row=${result##*|}
final_left=$(not_final 2)
confirmed=$(value 2 coord "SELECT count(*) FROM tcc.transactions WHERE status = 'confirmed'")
cancelled=$(value 2 coord "SELECT count(*) FROM tcc.transactions WHERE status = 'cancelled'")
confirmed_sum=$(value 2 coord "SELECT coalesce(sum(amount), 0) FROM transfers w JOIN tcc.transactions t USING (gid) WHERE t.status = 'confirmed'")
a=$(bank_value bank1 "SELECT balance || '/' || frozen FROM accounts WHERE id = 1")
b=$(bank_value bank2 "SELECT balance || '/' || frozen FROM accounts WHERE id = 2")
both=0
for n in 1 2; do
	k=$(bank_value "bank$n" "SELECT count(*) FROM (SELECT gid, branch FROM tcc._barrier
		GROUP BY gid, branch HAVING count(*) FILTER (WHERE op = 'confirm') > 0
		AND count(*) FILTER (WHERE op = 'cancel') > 0) x")
	both=$((both + k))
done
sum_ok=$("$PYTHON" -c "
from decimal import Decimal as D
a, af = '$a'.split('/'); b, bf = '$b'.split('/')
print(int(D(a) + D(b) == D('$START_BALANCE') and D(b) == D('$confirmed_sum')))")
echo "    bank1 A balance/frozen: $a   bank2 B balance/frozen: $b"
check "every transaction final on node2 ($confirmed confirmed, $cancelled cancelled)" '[ "$final_left" = 0 ]'
check "every transfer whose COMMIT a client saw ($committed) is confirmed" '[ "$not_confirmed" = 0 ] && [ "$committed" -gt 0 ]'
check "and its row in the clients' table is on node2" '[ "$no_row" = 0 ]'
check "no reservation left: nothing frozen in either bank" '[ "${a#*/}" = 0.00 ] && [ "${b#*/}" = 0.00 ]'
check "no branch got both a confirm and a cancel (barrier rows)" '[ "$both" = 0 ]'
check "the money adds up: A + B = $START_BALANCE, B = the confirmed transfers' sum ($confirmed_sum)" '[ "$sum_ok" = 1 ]'

# ---------------------------------------------------------------- rejoin

say "node1 comes back: Patroni rewinds it (pg_rewind) and it follows node2"
t0=$SECONDS
start_node 1
if wait_for "is_sync_standby 1" 120; then
	echo "    node1 is node2's synchronous standby ($((SECONDS - t0)) s)"
	check "the old leader, now a standby, runs no coordinator" \
		'[ "$(coordinators 1)" = 0 ]'
else
	echo "    FAILED: node1 did not rejoin as a standby"
	checks_failed=$((checks_failed + 1))
fi

echo
if [ $checks_failed = 0 ]; then
	failed=0
	echo "RESULT ok committed=$committed confirmed=$confirmed cancelled=$cancelled bank1.A=$a bank2.B=$b"
else
	echo "RESULT FAILED ($checks_failed checks) committed=$committed confirmed=$confirmed cancelled=$cancelled bank1.A=$a bank2.B=$b"
fi
