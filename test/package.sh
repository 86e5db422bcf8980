#!/usr/bin/env bash
# test/package.sh - build the Debian packages, run the transfer example
# against them, and the packaged console and monitoring files.
#
#   bash test/package.sh
#
# Builds postgresql-15-tcc_<version>_<arch>.deb and tcc-console_<version>_all.deb
# from a copy of this tree with dpkg-buildpackage (debian/, pg_buildext),
# checks their versions and files, installs them with apt-get, checks that
# the installed files belong to them, and runs examples/transfer/run.sh (with
# TCC_SKIP_SETUP=1, so nothing is built over the package) and its RESULT
# line.  Then, on a throwaway cluster of its own (test/cluster.sh), it starts
# the console as the installed systemd unit's ExecStart says (as user nobody,
# with the installed configuration file and the cluster's db and a port
# added on the command line), logs in, and runs prometheus-postgres-exporter
# with the installed queries file and promtool on the installed alert
# rules' tests.  Needs root and the packages test/setup.sh installs.  .ci/run
# runs it after the test suites, as it replaces the tcc those installed.
#
# With TCC_PGROOT set, the packages are unpacked into that private copy of
# PostgreSQL instead of installed with apt, and everything runs there (for
# trying it out on a shared machine).  TCC_DEMO_PORT, TCC_DEMO_BANK1_PORT and
# TCC_DEMO_BANK2_PORT pass on to the example; TCC_PKG_PORT (default 25398),
# TCC_PKG_CONSOLE_PORT (18204) and TCC_PKG_EXPORTER_PORT (18205) are the
# console check's cluster, console and exporter.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
# stop_process, port_busy, as_postgres; cluster_*
. "$ROOT/test/proc.sh"
. "$ROOT/test/cluster.sh"

RESULT="RESULT bank1.A=960.00/0.00 bank2.B=40.00/0.00 demo-1=confirmed demo-2=cancelled demo-3=confirmed demo-4=confirmed demo-5=confirmed"
PREFIX=${TCC_PGROOT:-}
PGBIN=$PREFIX/usr/lib/postgresql/15/bin
PKG_PORT=${TCC_PKG_PORT:-25398}
CONSOLE_PORT=${TCC_PKG_CONSOLE_PORT:-18204}
EXPORTER_PORT=${TCC_PKG_EXPORTER_PORT:-18205}
PYTHON=/usr/bin/python3

die() {
	echo "package.sh: $*" >&2
	exit 1
}

SCRATCH=$(mktemp -d /tmp/tcc-package.XXXXXX) || die "mktemp failed"
chmod 755 "$SCRATCH"
console_pid= exporter_pid=
# Stop what the console check started and remove the scratch directory
# (every step, whatever the one before it returned).
cleanup() {
	set +e
	stop_process "$console_pid"
	stop_process "$exporter_pid"
	cluster_stop_all
	rm -rf "$SCRATCH"
}
trap cleanup EXIT
start=$SECONDS

# ---------------------------------------------------------------- build

# The tree as git sees it (tracked and new files, no build products), or
# all of it after make clean when it is not a git checkout.
mkdir "$SCRATCH/src"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$ROOT" ls-files -co --exclude-standard -z |
		tar -C "$ROOT" --null -T - -cf - | tar -C "$SCRATCH/src" -xf -
else
	cp -a "$ROOT/." "$SCRATCH/src"
	make -C "$SCRATCH/src" clean >/dev/null
fi

echo "package.sh: dpkg-buildpackage in $SCRATCH/src"
if ! (cd "$SCRATCH/src" && dpkg-buildpackage -us -uc -b) >"$SCRATCH/build.log" 2>&1; then
	tail -n 60 "$SCRATCH/build.log"
	die "dpkg-buildpackage failed"
fi

version=$(cd "$ROOT" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb=$SCRATCH/postgresql-15-tcc_${version}_${arch}.deb
cdeb=$SCRATCH/tcc-console_${version}_all.deb
for f in "$deb" "$cdeb"; do
	[ -f "$f" ] || die "no $(basename "$f") built: $(ls "$SCRATCH")"
done
echo "package.sh: built $(basename "$deb") and $(basename "$cdeb") in $((SECONDS - start)) s"

control=$(sed -n "s/^default_version = '\(.*\)'/\1/p" tcc.control)
case $version in
"$control"-*) ;;
*) die "package version $version is not the control file's $control" ;;
esac

# Check that package $1 holds the files listed after it.
holds() {
	local pkg=$1 files f
	shift
	files=$(dpkg-deb -c "$pkg" | awk '{print $6}')
	for f in "$@"; do
		grep -qxF "$f" <<<"$files" || die "$(basename "$pkg") lacks $f"
	done
}
holds "$deb" ./usr/lib/postgresql/15/lib/tcc.so \
	./usr/share/postgresql/15/extension/tcc.control \
	./usr/share/postgresql/15/extension/tcc--1.0.sql \
	./usr/share/postgresql/15/extension/tcc--1.0--1.1.sql \
	./usr/share/postgresql/15/extension/tcc--1.1.sql \
	./usr/share/postgresql/15/extension/tcc--1.1--1.2.sql \
	./usr/share/postgresql/15/extension/tcc--1.2.sql
SHARE=/usr/share/tcc-console
UNIT=/lib/systemd/system/tcc-console.service
CONF=/etc/tcc-console/console.conf
holds "$cdeb" ".$SHARE/app.py" ".$SHARE/live.py" ".$SHARE/templates/base.html" \
	".$SHARE/static/console.js" ".$UNIT" ".$CONF" \
	".$SHARE/monitoring/queries.yaml" ".$SHARE/monitoring/alerts.yml" \
	".$SHARE/monitoring/alerts_test.yml"
dpkg-deb -f "$cdeb" Depends | grep -q python3-waitress ||
	die "tcc-console does not depend on python3-waitress"
dpkg-deb --ctrl-tarfile "$cdeb" | tar -xOf - ./conffiles | grep -qxF "$CONF" ||
	die "$CONF is not a conffile of tcc-console"

# ---------------------------------------------------------------- install

if [ -n "$PREFIX" ]; then
	[ -x "$PGBIN/postgres" ] ||
		die "TCC_PGROOT=$TCC_PGROOT holds no PostgreSQL (run test/setup.sh)"
	echo "package.sh: unpacking the packages into $TCC_PGROOT"
	dpkg-deb -x "$deb" "$PREFIX"
	dpkg-deb -x "$cdeb" "$PREFIX"
	cmp -s "$PGBIN/../lib/tcc.so" \
		<(dpkg-deb --fsys-tarfile "$deb" |
			tar -xOf - ./usr/lib/postgresql/15/lib/tcc.so) ||
		die "the unpacked tcc.so is not the package's"
else
	echo "package.sh: apt-get install $(basename "$deb") $(basename "$cdeb")"
	apt-get install -y --reinstall --allow-downgrades "$deb" "$cdeb" </dev/null >"$SCRATCH/apt.log" 2>&1 || {
		cat "$SCRATCH/apt.log"
		die "apt-get install failed"
	}
	for p in postgresql-15-tcc tcc-console; do
		[ "$(dpkg-query -W -f='${Version}' "$p")" = "$version" ] ||
			die "$p $version is not installed"
	done
	for f in /usr/lib/postgresql/15/lib/tcc.so:postgresql-15-tcc \
		/usr/share/postgresql/15/extension/tcc.control:postgresql-15-tcc \
		"$SHARE/app.py:tcc-console" "$UNIT:tcc-console" "$CONF:tcc-console"; do
		owner=$(dpkg -S "${f%:*}" 2>/dev/null | cut -d: -f1)
		[ "$owner" = "${f##*:}" ] || die "${f%:*} belongs to '$owner'"
	done
fi

# ---------------------------------------------------------------- example

echo "package.sh: examples/transfer/run.sh against the installed package"
TCC_SKIP_SETUP=1 bash examples/transfer/run.sh </dev/null >"$SCRATCH/example.log" 2>&1 || {
	tail -n 60 "$SCRATCH/example.log"
	die "the transfer example failed against the package"
}
last=$(tail -n 1 "$SCRATCH/example.log")
if [ "$last" != "$RESULT" ]; then
	tail -n 60 "$SCRATCH/example.log"
	die "unexpected result: $last"
fi
echo "$last"

# ---------------------------------------------------------------- console

for p in "$PKG_PORT" "$CONSOLE_PORT" "$EXPORTER_PORT"; do
	port_busy "$p" && die "port $p is in use (see TCC_PKG_PORT," \
		"TCC_PKG_CONSOLE_PORT and TCC_PKG_EXPORTER_PORT)"
done
cluster_scratch tcc-package-db "$SCRATCH" || die "mktemp failed"
cluster_init "$TMP/data" "$PKG_PORT" "console check (test/package.sh)" coord \
	--no-sync || die "$CLUSTER_ERROR"
cluster_conf "$TMP/data" <<EOF
shared_preload_libraries = 'tcc'
tcc.database = 'coord'
unix_socket_permissions = 0700
EOF
cat >"$TMP/data/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 scram-sha-256
EOF
cluster_start "$TMP/data" "$TMP/server.log" 60 || die "the cluster did not start"
"$PGBIN/psql" -X -q -h "$TMP" -p "$PKG_PORT" -U postgres -d coord \
	-v ON_ERROR_STOP=1 >"$SCRATCH/roles.log" 2>&1 <<'SQL' || {
CREATE EXTENSION tcc;
CREATE ROLE pkg_console LOGIN PASSWORD 'pkg-console-pw';
GRANT USAGE ON SCHEMA tcc TO pkg_console;
GRANT EXECUTE ON FUNCTION tcc_worker_state() TO pkg_console;
GRANT SELECT ON tcc.transactions, tcc.transaction_list, tcc.branches,
    tcc.attempts, tcc.actions, tcc.attention, tcc.worker TO pkg_console;
CREATE ROLE pkg_monitor LOGIN PASSWORD 'pkg-monitor-pw';
GRANT pg_monitor TO pkg_monitor;
SQL
	cat "$SCRATCH/roles.log"
	die "creating the extension and the roles failed"
}

unit=$PREFIX$UNIT
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ -n "$exec_start" ] || die "no ExecStart in $unit"
if [ -n "$PREFIX" ]; then
	exec_start=${exec_start//$SHARE/$PREFIX$SHARE}
	exec_start=${exec_start//$CONF/$PREFIX$CONF}
fi
read -r -a console_cmd <<<"$exec_start"
echo "package.sh: the console as $UNIT says, as nobody: $exec_start"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "${console_cmd[@]}" \
	--db "host=127.0.0.1 port=$PKG_PORT dbname=coord" --port "$CONSOLE_PORT" \
	>"$SCRATCH/console.log" 2>&1 </dev/null &
console_pid=$!
for _ in $(seq 1 200); do
	port_busy "$CONSOLE_PORT" && break
	kill -0 "$console_pid" 2>/dev/null || break
	sleep 0.1
done
port_busy "$CONSOLE_PORT" || {
	cat "$SCRATCH/console.log"
	die "the packaged console did not start"
}
"$PYTHON" - "http://127.0.0.1:$CONSOLE_PORT/" pkg_console pkg-console-pw <<'PY' || {
import http.cookiejar, re, sys, urllib.parse, urllib.request
url, role, password = sys.argv[1:]
web = urllib.request.build_opener(
    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
page = web.open(url + "login", timeout=10).read().decode()
token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
page = web.open(url + "login", urllib.parse.urlencode(
    {"csrf": token, "role": role, "password": password}).encode(),
    timeout=10).read().decode()
if "<h1>Overview</h1>" in page and 'id="whoami">%s<' % role in page \
        and '<span class="ok">running</span>' in page:
    print("package.sh: logged in to the packaged console as %s: the overview"
          " shows the worker running" % role)
else:
    sys.exit(page[-3000:])
PY
	cat "$SCRATCH/console.log"
	die "logging in to the packaged console failed"
}

queries=$PREFIX$SHARE/monitoring/queries.yaml
echo "package.sh: prometheus-postgres-exporter --extend.query-path=$queries"
DATA_SOURCE_NAME="host=127.0.0.1 port=$PKG_PORT dbname=coord user=pkg_monitor password=pkg-monitor-pw sslmode=disable" \
	/usr/bin/prometheus-postgres-exporter --extend.query-path="$queries" \
	--web.listen-address="127.0.0.1:$EXPORTER_PORT" >"$SCRATCH/exporter.log" 2>&1 </dev/null &
exporter_pid=$!
metrics=
for _ in $(seq 1 100); do
	metrics=$(curl -sf "http://127.0.0.1:$EXPORTER_PORT/metrics" || true)
	grep -qE '^tcc_worker_up(\{[^}]*\})? 1$' <<<"$metrics" && break
	kill -0 "$exporter_pid" 2>/dev/null || break
	sleep 0.2
done
grep -qE '^tcc_worker_up(\{[^}]*\})? 1$' <<<"$metrics" || {
	cat "$SCRATCH/exporter.log"
	die "the exporter with the installed queries file shows no tcc_worker_up 1"
}
echo "package.sh: the exporter shows $(grep -c '^tcc_' <<<"$metrics") tcc samples, tcc_worker_up 1"
(cd "$PREFIX$SHARE/monitoring" && promtool test rules alerts_test.yml) \
	>"$SCRATCH/promtool.log" 2>&1 || {
	cat "$SCRATCH/promtool.log"
	die "promtool test rules on the installed alerts_test.yml failed"
}
echo "package.sh: promtool test rules on the installed alert rules: SUCCESS"
echo "package.sh: ok, $(basename "$deb") and $(basename "$cdeb") built, installed, ran the example, the console and the exporter in $((SECONDS - start)) s"
