#!/usr/bin/python3
# The high-availability example (examples/ha/run.sh), SPEC section 6 (1.1):
# tcc under Patroni and etcd with a synchronous standby; the leader node is
# killed under load and the new leader settles every transaction: all
# final, every COMMIT a client saw confirmed with its row, nothing frozen in
# the banks, no branch both confirmed and cancelled, the money adding up;
# the standby runs no coordinator before its promotion, and the old leader
# rejoins (pg_rewind) without one.  The script checks all this itself and
# exits 0 only if every check passed; this test runs it on ports derived
# from the harness's and checks that it left nothing listening.
#
# Needs the Debian packages patroni and etcd-server (test/setup.sh).

import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import diag, done_testing, is_, ok  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RUN_SH = os.path.join(ROOT, "examples", "ha", "run.sh")
RUN_TIMEOUT = 300

# All nine ports are taken from above the harness's participant port, out
# of the ephemeral port range: a server cannot bind a port that a client
# connection's TIME_WAIT holds.
http = int(os.environ["TCC_TP_PORT"])
PORTS = {
    "TCC_HA_BANK1": http + 1,
    "TCC_HA_BANK2": http + 2,
    "TCC_HA_REST1": http + 3,
    "TCC_HA_REST2": http + 4,
    "TCC_HA_ETCD": http + 5,      # and its peer port, + 6
    "TCC_HA_PG1": http + 7,
    "TCC_HA_PG2": http + 8,
    "TCC_HA_PG_BANKS": http + 9,
}


def listening(port):
    """True if something accepts connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


env = dict(os.environ, TCC_SKIP_SETUP="1",
           **{k: str(v) for k, v in PORTS.items()})
t0 = time.monotonic()
try:
    res = subprocess.run(["bash", RUN_SH], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=RUN_TIMEOUT)
    out, rc = res.stdout, res.returncode
except subprocess.TimeoutExpired as e:
    out = (e.stdout or b"").decode("utf-8", "replace") \
        if isinstance(e.stdout, bytes) else (e.stdout or "")
    rc = None

good = is_(rc, 0, "examples/ha/run.sh exits 0 (took %.0f s)"
           % (time.monotonic() - t0))
lines = out.splitlines()
result = [line for line in lines if line.startswith("RESULT ")]
good &= ok(result and result[-1].startswith("RESULT ok "),
           "its result line says ok: %s" % (result[-1] if result else None))
failed = [line.strip() for line in lines if "FAILED" in line]
good &= is_(failed, [], "none of its checks failed")
passed = [line.strip() for line in lines if line.strip().startswith("ok: ")]
good &= ok(len(passed) >= 8, "it ran its checks (%d passed)" % len(passed))
if not good:
    for line in lines[-60:]:
        diag(line)
left = [p for p in list(PORTS.values()) + [PORTS["TCC_HA_ETCD"] + 1]
        if listening(p)]
is_(left, [], "nothing it started is still listening")

done_testing()
