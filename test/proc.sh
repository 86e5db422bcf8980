# test/proc.sh - shell helpers shared by test/run.sh, bench/run.sh and the
# examples' run.sh scripts.  Source it; it defines functions only.

# Stops process $1 (if it runs): signal $3 (default TERM), up to $2 seconds
# (default 5) to exit, then SIGKILL.  A child of this shell is reaped.
stop_process() {
	local pid=$1 tries=$((${2:-5} * 20)) sig=${3:-TERM}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -"$sig" "$pid" 2>/dev/null
	for _ in $(seq 1 "$tries"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# Is something listening on 127.0.0.1:$1?
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Runs a command as the postgres OS user (the server refuses to run as
# root), in the scratch directory $TMP.
as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		(cd "$TMP" && runuser -u postgres -- "$@")
	else
		(cd "$TMP" && "$@")
	fi
}

# Stops the cluster of data directory $1 (if it runs) with $PGBIN/pg_ctl:
# a fast shutdown of up to $2 seconds (default 30), else an immediate one.
stop_cluster() {
	[ -f "$1/postmaster.pid" ] || return 0
	as_postgres "$PGBIN/pg_ctl" -D "$1" -m fast -t "${2:-30}" -w stop >/dev/null 2>&1 ||
		as_postgres "$PGBIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null 2>&1
}

# Waits up to $3 seconds for process $1 to write its pid file $2; fails if
# the process exits first or the time is up.
wait_pidfile() {
	local pid=$1 pidfile=$2 tries=$(($3 * 20))
	for _ in $(seq 1 "$tries"); do
		[ -f "$pidfile" ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
