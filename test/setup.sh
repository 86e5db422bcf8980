#!/usr/bin/env bash
# test/setup.sh - install what building and testing tcc needs, then build and
# install the extension.
#
# Installs the missing Debian packages (apt-get update first, unless
# TCC_APT_UPDATED=1 says it was just done), then runs make and make install
# with PostgreSQL 15's pg_config.  Run as root from anywhere; used by
# test/run.sh, .ci/run, the example and the benchmark.

set -euo pipefail

cd "$(dirname "$0")/.."

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PACKAGES=(
	postgresql-15
	postgresql-server-dev-15
	libcurl4-openssl-dev
	postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl
	python3-psycopg2
	make
	gcc
)

# Print the packages of $PACKAGES that are not installed.
missing_packages() {
	local p
	for p in "${PACKAGES[@]}"; do
		if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
			echo "$p"
		fi
	done
}

missing=$(missing_packages)
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: missing packages, run as root to install them:" $missing >&2
		exit 1
	fi
	echo "setup: installing" $missing
	export DEBIAN_FRONTEND=noninteractive
	if [ "${TCC_APT_UPDATED:-}" != 1 ]; then
		apt-get update
	fi
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing </dev/null
fi

echo "setup: building tcc"
make PG_CONFIG="$PG_CONFIG"
make PG_CONFIG="$PG_CONFIG" install
