# test/cluster.sh - the one way to make a throwaway PostgreSQL cluster, for
# test/run.sh, bench/run.sh and examples/transfer/run.sh.  Source it after
# test/proc.sh; it defines functions only.
#
# The caller sets PGBIN (the server's binaries: under TCC_PGROOT when that
# is set) and makes its scratch directory with cluster_scratch, which sets
# TMP.  Every cluster it starts with cluster_start is stopped again by
# cluster_stop_all, which the caller's cleanup (its EXIT trap) calls.
#
#   cluster_scratch tcc-test                 TMP=/tmp/tcc-test.XXXXXX
#   cluster_init "$TMP/data" "$PORT" "test cluster (test/run.sh)" \
#       "tcc_test tcc_other" --no-sync || die "$CLUSTER_ERROR"
#   cluster_conf "$TMP/data" <<EOF ... EOF  more settings
#   cluster_start "$TMP/data" "$TMP/server.log" 60 || die "..."
#   cluster_restart "$TMP/data" "$TMP/server.log" 60   new postmaster settings
#   cluster_stop_all                         in the cleanup

CLUSTER_DIRS=()			# data directories started, in order
CLUSTER_STOP_MODES=()	# how each is stopped: fast or immediate
CLUSTER_STOP_TIMEOUT=30	# seconds a fast shutdown may take
CLUSTER_ERROR=			# what cluster_init found wrong

# Makes the scratch directory TMP=${2:-/tmp}/$1.XXXXXX, which the postgres
# user may use.
cluster_scratch() {
	TMP=$(mktemp -d "${2:-/tmp}/$1.XXXXXX") || return 1
	chmod 755 "$TMP"
	if [ "$(id -u)" = 0 ]; then
		chown postgres:postgres "$TMP"
	fi
	return 0
}

# Creates a cluster in data directory $1 for 127.0.0.1 port $2: initdb
# (trust, user postgres, UTF8, locale C, further initdb options after the
# fourth argument), the databases of the space-separated list $4 made in
# single-user mode (so that a coordinator worker finds them at its first
# start), and postgresql.conf's network settings under the heading $3.
# On failure prints the log, sets CLUSTER_ERROR and returns 1.
cluster_init() {
	local dir=$1 port=$2 title=$3 dbs=$4 db
	shift 4
	as_postgres "$PGBIN/initdb" -D "$dir" --auth=trust --username=postgres \
		--encoding=UTF8 --locale=C "$@" >"$TMP/initdb.log" 2>&1 || {
		cat "$TMP/initdb.log"
		CLUSTER_ERROR="initdb failed"
		return 1
	}
	if [ -n "$dbs" ]; then
		for db in $dbs; do
			echo "CREATE DATABASE $db"
		done | as_postgres "$PGBIN/postgres" --single -D "$dir" postgres \
			>"$TMP/single.log" 2>&1 || {
			cat "$TMP/single.log"
			CLUSTER_ERROR="creating the databases ($dbs) failed"
			return 1
		}
	fi
	cluster_conf "$dir" <<EOF

# ---- tcc $title
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$TMP'
EOF
}

# Appends standard input to the postgresql.conf of data directory $1.
cluster_conf() {
	cat >>"$1/postgresql.conf"
}

# Starts the cluster of data directory $1 with server log $2, waiting up to
# $3 seconds; cluster_stop_all stops it, with a fast shutdown or, if $4 is
# "immediate", an immediate one.
cluster_start() {
	as_postgres "$PGBIN/pg_ctl" -D "$1" -l "$2" -w -t "$3" start >/dev/null || return 1
	CLUSTER_DIRS+=("$1")
	CLUSTER_STOP_MODES+=("${4:-fast}")
}

# Restarts the cluster of data directory $1, which cluster_start started,
# with server log $2, waiting up to $3 seconds (a fast shutdown first): for
# settings that take a restart.
cluster_restart() {
	as_postgres "$PGBIN/pg_ctl" -D "$1" -l "$2" -w -t "$3" -m fast restart >/dev/null
}

# Stops the cluster of data directory $1 (if it runs): a fast shutdown of
# up to CLUSTER_STOP_TIMEOUT seconds, else (or if $2 is "immediate") an
# immediate one.
cluster_stop() {
	if [ "${2:-fast}" = immediate ]; then
		[ -f "$1/postmaster.pid" ] || return 0
		as_postgres "$PGBIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null 2>&1
	else
		stop_cluster "$1" "$CLUSTER_STOP_TIMEOUT"
	fi
}

# Stops every cluster cluster_start started, the last one first.
cluster_stop_all() {
	local i
	for ((i = ${#CLUSTER_DIRS[@]} - 1; i >= 0; i--)); do
		cluster_stop "${CLUSTER_DIRS[$i]}" "${CLUSTER_STOP_MODES[$i]}"
	done
	CLUSTER_DIRS=()
	CLUSTER_STOP_MODES=()
}
