"""Go for the tests: the go command and the environment to build the Go
modules of the repository with (examples/clients/go, test/dtmbank).

The modules pin their dependencies in go.mod and go.sum; test/setup.sh
downloads them from the Go module proxy beforehand (go mod download), and
a build here fetches whatever is still missing the same way.  Builds use
the machine's own Go (GOTOOLCHAIN=local) and its usual module and build
caches, and never change go.mod or go.sum (-mod=readonly).
"""

import os
import re
import shutil
import subprocess

MIN_GO = (1, 25)    # the newest "go" line of the modules' go.mod files


def go_command():
    """(path of the go command, None), or (None, why there is none fit)."""
    go = shutil.which("go")
    if go is None:
        return None, "no go command on PATH"
    try:
        version = subprocess.run([go, "env", "GOVERSION"], capture_output=True,
                                 text=True, timeout=60,
                                 env=dict(os.environ, GOTOOLCHAIN="local")
                                 ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "%s env GOVERSION failed: %s" % (go, e)
    m = re.match(r"go(\d+)\.(\d+)", version)
    if not m or (int(m.group(1)), int(m.group(2))) < MIN_GO:
        return None, "%s is %s; go%d.%d or newer is needed" % (
            go, version or "of unknown version", MIN_GO[0], MIN_GO[1])
    return go, None


def go_env(go, base=None):
    """The environment for go builds: base (default os.environ) with the
    module cache and build cache the go command uses by default."""
    env = dict(base if base is not None else os.environ)
    out = subprocess.run([go, "env", "GOPATH", "GOMODCACHE", "GOCACHE"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, GOTOOLCHAIN="local")).stdout
    gopath, modcache, cache = (out.splitlines() + ["", "", ""])[:3]
    env.update(GO111MODULE="on", GOTOOLCHAIN="local",
               GOFLAGS="-mod=readonly -buildvcs=false",
               GOPATH=gopath, GOMODCACHE=modcache, GOCACHE=cache)
    return env
