#!/usr/bin/env bash
# test/package.sh - build the Debian package and run the transfer example
# against the installed package.
#
#   bash test/package.sh
#
# Builds postgresql-15-tcc_<version>_<arch>.deb from a copy of this tree with
# dpkg-buildpackage (debian/, pg_buildext), checks its version and files,
# installs it with apt-get, checks that the installed files belong to it, and
# runs examples/transfer/run.sh (with TCC_SKIP_SETUP=1, so nothing is built
# over the package) and its RESULT line.  Needs root and the packages
# test/setup.sh installs.  .ci/run runs it after the test suites, as it
# replaces the tcc those installed.
#
# With TCC_PGROOT set, the package is unpacked into that private copy of
# PostgreSQL instead of installed with apt, and the example runs there (for
# trying it out on a shared machine).  TCC_DEMO_PORT, TCC_DEMO_BANK1_PORT and
# TCC_DEMO_BANK2_PORT pass on to the example.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

RESULT="RESULT bank1.A=960.00/0.00 bank2.B=40.00/0.00 demo-1=confirmed demo-2=cancelled demo-3=confirmed demo-4=confirmed demo-5=confirmed"

die() {
	echo "package.sh: $*" >&2
	exit 1
}

TMP=$(mktemp -d /tmp/tcc-package.XXXXXX) || die "mktemp failed"
trap 'rm -rf "$TMP"' EXIT
start=$SECONDS

# ---------------------------------------------------------------- build

# The tree as git sees it (tracked and new files, no build products), or
# all of it after make clean when it is not a git checkout.
mkdir "$TMP/src"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$ROOT" ls-files -co --exclude-standard -z |
		tar -C "$ROOT" --null -T - -cf - | tar -C "$TMP/src" -xf -
else
	cp -a "$ROOT/." "$TMP/src"
	make -C "$TMP/src" clean >/dev/null
fi

echo "package.sh: dpkg-buildpackage in $TMP/src"
if ! (cd "$TMP/src" && dpkg-buildpackage -us -uc -b) >"$TMP/build.log" 2>&1; then
	tail -n 60 "$TMP/build.log"
	die "dpkg-buildpackage failed"
fi

version=$(cd "$ROOT" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb=$TMP/postgresql-15-tcc_${version}_${arch}.deb
[ -f "$deb" ] || die "no $(basename "$deb") built: $(ls "$TMP")"
echo "package.sh: built $(basename "$deb") in $((SECONDS - start)) s"

control=$(sed -n "s/^default_version = '\(.*\)'/\1/p" tcc.control)
case $version in
"$control"-*) ;;
*) die "package version $version is not the control file's $control" ;;
esac

files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/lib/postgresql/15/lib/tcc.so \
	./usr/share/postgresql/15/extension/tcc.control \
	./usr/share/postgresql/15/extension/tcc--1.0.sql \
	./usr/share/postgresql/15/extension/tcc--1.0--1.1.sql \
	./usr/share/postgresql/15/extension/tcc--1.1.sql \
	./usr/share/postgresql/15/extension/tcc--1.1--1.2.sql \
	./usr/share/postgresql/15/extension/tcc--1.2.sql; do
	grep -qxF "$f" <<<"$files" || die "the package lacks $f"
done

# ---------------------------------------------------------------- install

if [ -n "${TCC_PGROOT:-}" ]; then
	[ -x "$TCC_PGROOT/usr/lib/postgresql/15/bin/postgres" ] ||
		die "TCC_PGROOT=$TCC_PGROOT holds no PostgreSQL (run test/setup.sh)"
	echo "package.sh: unpacking the package into $TCC_PGROOT"
	dpkg-deb -x "$deb" "$TCC_PGROOT"
	cmp -s "$TCC_PGROOT/usr/lib/postgresql/15/lib/tcc.so" \
		<(dpkg-deb --fsys-tarfile "$deb" |
			tar -xOf - ./usr/lib/postgresql/15/lib/tcc.so) ||
		die "the unpacked tcc.so is not the package's"
else
	echo "package.sh: apt-get install $(basename "$deb")"
	apt-get install -y --reinstall --allow-downgrades "$deb" </dev/null >"$TMP/apt.log" 2>&1 || {
		cat "$TMP/apt.log"
		die "apt-get install failed"
	}
	[ "$(dpkg-query -W -f='${Version}' postgresql-15-tcc)" = "$version" ] ||
		die "postgresql-15-tcc $version is not installed"
	for f in /usr/lib/postgresql/15/lib/tcc.so \
		/usr/share/postgresql/15/extension/tcc.control; do
		owner=$(dpkg -S "$f" 2>/dev/null | cut -d: -f1)
		[ "$owner" = postgresql-15-tcc ] || die "$f belongs to '$owner'"
	done
fi

# ---------------------------------------------------------------- example

echo "package.sh: examples/transfer/run.sh against the installed package"
TCC_SKIP_SETUP=1 bash examples/transfer/run.sh </dev/null >"$TMP/example.log" 2>&1 || {
	tail -n 60 "$TMP/example.log"
	die "the transfer example failed against the package"
}
last=$(tail -n 1 "$TMP/example.log")
if [ "$last" != "$RESULT" ]; then
	tail -n 60 "$TMP/example.log"
	die "unexpected result: $last"
fi
echo "$last"
echo "package.sh: ok, $(basename "$deb") built, installed and ran the example in $((SECONDS - start)) s"
