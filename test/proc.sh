# test/proc.sh - shell helpers shared by test/run.sh and bench/run.sh.
# Source it; it defines functions only.

# Stops process $1 (if it runs): SIGTERM, up to 5 s to exit, then SIGKILL.
# The process must be a child of this shell, so that it can be reaped.
stop_process() {
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
