#!/usr/bin/env bash
# test/setup.sh - install what building and testing tcc needs, then build and
# install the extension.
#
# Installs the missing Debian packages (apt-get update first, unless
# TCC_APT_UPDATED=1 says it was just done), then runs make and make install
# with PostgreSQL 15's pg_config.  Run as root from anywhere; used by
# test/run.sh, .ci/run, the example and the benchmark.
#
# TCC_PGROOT=/some/dir installs into a private copy of PostgreSQL 15 under
# that directory instead of the system's (made on first use), so that two
# checkouts can be built and tested side by side; test/run.sh honours the
# same variable.

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
	python3-flask
	# the console's WSGI server (console/app.py, the tcc-console package)
	python3-waitress
	python3-selenium
	chromium
	chromium-driver
	prometheus
	prometheus-postgres-exporter
	make
	gcc
	patroni
	etcd-server
	# the certificates of t813_tls.py, the OpenTelemetry venv of
	# t812_trace_context.py (its packages come from PyPI, pinned there)
	openssl
	python3-venv
	# the clients of examples/clients (test/integration/t320_clients.py)
	python3-psycopg
	default-jdk-headless
	libpostgresql-jdbc-java
	# the Debian package (test/package.sh)
	postgresql-server-dev-all
	debhelper
	dpkg-dev
	build-essential
)
# Node.js and npm from Debian, unless a node and npm are already there
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	PACKAGES+=(nodejs npm)
fi

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
	# examples/ha starts etcd and Patroni of its own, and the tests their
	# own exporter: not the packages' services, where something started them
	if [ -d /run/systemd/system ]; then
		systemctl disable --now etcd patroni prometheus \
			prometheus-postgres-exporter >/dev/null 2>&1 || true
	fi
	for svc in prometheus prometheus-postgres-exporter; do
		if [ -x "/etc/init.d/$svc" ] && "/etc/init.d/$svc" status >/dev/null 2>&1; then
			echo "setup: stopping the $svc service the package started"
			"/etc/init.d/$svc" stop || true
		fi
	done
fi

# The Go modules of the tests (examples/clients/go for t320, test/dtmbank
# for t335): their dependencies, pinned by go.mod and go.sum, come from the
# Go module proxy with the machine's Go (go1.25 or newer).  Without Go, or
# without the proxy, those tests say so and fail.
if command -v go >/dev/null; then
	for module in examples/clients/go test/dtmbank; do
		[ -f "$module/go.mod" ] || continue
		echo "setup: go mod download in $module"
		(cd "$module" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go mod download) ||
			echo "setup: go mod download in $module failed (the Go module proxy?)" >&2
	done
	# DTM's server for t335, built once here so that the test's own build
	# finds its modules and compiled packages in Go's caches
	dtm_dir=$(mktemp -d)
	bash test/dtm_install.sh "$dtm_dir" ||
		echo "setup: installing DTM's server failed (t335 will say why)" >&2
	rm -rf "$dtm_dir"
else
	echo "setup: no go command: t320's Go client and t335 need go1.25 or newer" >&2
fi

echo "setup: building tcc"
make PG_CONFIG="$PG_CONFIG"
if [ -n "${TCC_PGROOT:-}" ]; then
	# PostgreSQL finds its share and lib directories relative to its
	# binaries, so a copy of both trees under one prefix is self-contained
	if [ ! -x "$TCC_PGROOT/usr/lib/postgresql/15/bin/postgres" ]; then
		mkdir -p "$TCC_PGROOT/usr/lib/postgresql" "$TCC_PGROOT/usr/share/postgresql"
		cp -a /usr/lib/postgresql/15 "$TCC_PGROOT/usr/lib/postgresql/"
		cp -a /usr/share/postgresql/15 "$TCC_PGROOT/usr/share/postgresql/"
	fi
	make PG_CONFIG="$PG_CONFIG" DESTDIR="$TCC_PGROOT" install
else
	make PG_CONFIG="$PG_CONFIG" install
fi
