#!/usr/bin/env bash
# bench/soak.sh - the tcc soak: full load for BENCH_SOAK_SECONDS (default
# 600) while one participant hangs on every call, the worker's memory
# sampled every 30 s.  Settings and cleanup as bench/run.sh (it runs that
# script with BENCH_SOAK=1); see bench/README.md.
exec env BENCH_SOAK=1 bash "$(dirname "$0")/run.sh" "$@"
