#!/usr/bin/env bash
# test/dtm_install.sh - install DTM's server the way its Go users do, from
# the Go module proxy at a pinned release, into a directory of the caller's.
#
#   bash test/dtm_install.sh DIR        DIR/bin/dtm, and DIR/module holding
#                                       the path of the module's source in
#                                       the module cache (its sqls/ folder
#                                       has the store's schema)
#
# DTM_VERSION (default v1.19.0) picks the release.  Nothing of DTM is kept
# in this repository: the source comes from the module proxy into Go's
# module cache, the binary is built into DIR.  Used by t335 (test/) and by
# the benchmark's S10 (bench/); test/setup.sh runs it once so that later
# builds find their modules and compiled packages in Go's caches.
#
# `go install github.com/dtm-labs/dtm@VERSION` does not work here: it first
# reads the module's version list for deprecations, which the proxy refuses
# (403).  So the release is required by a scratch module in DIR/src, and
# `go install` builds it from there: the same release, the same build.
# Exits 3 when there is no go command or it is older than go1.22 (the "go"
# line of DTM's go.mod), 4 when the release cannot be fetched (no Go module
# proxy); any other failure exits 1.

set -euo pipefail

DIR=${1:?usage: dtm_install.sh DIR}
VERSION=${DTM_VERSION:-v1.19.0}

command -v go >/dev/null || { echo "dtm_install: no go command" >&2; exit 3; }
export GOTOOLCHAIN=local GO111MODULE=on GOFLAGS=-buildvcs=false
gover=$(go env GOVERSION)
case "$gover" in
go1.2[2-9]* | go1.[3-9][0-9]* | go[2-9]*) ;;
*) echo "dtm_install: $gover is older than go1.22" >&2; exit 3 ;;
esac

mkdir -p "$DIR/src" "$DIR/bin"
cd "$DIR/src"
[ -f go.mod ] || go mod init dtmserver >/dev/null 2>&1
go get "github.com/dtm-labs/dtm@$VERSION" >get.log 2>&1 || {
	tail -n 20 get.log >&2
	echo "dtm_install: go get github.com/dtm-labs/dtm@$VERSION failed" >&2
	exit 4
}
GOBIN="$DIR/bin" go install -ldflags "-X main.Version=$VERSION" \
	github.com/dtm-labs/dtm
go list -m -f '{{.Dir}}' github.com/dtm-labs/dtm >"$DIR/module"
echo "dtm_install: $("$DIR/bin/dtm" -v 2>/dev/null | tail -n 1) ($gover) in $DIR/bin"
