#!/usr/bin/python3
# The high-availability example (examples/ha/run.sh),
# docs/guarantees.md#replication-and-failover (1.1): tcc under Patroni and
# etcd with a synchronous standby; the leader node is killed under load and
# the new leader settles every transaction: all final, every COMMIT a client
# saw confirmed with its row, nothing frozen in the banks, no branch both
# confirmed and cancelled, the money adding up; the standby runs no
# coordinator before its promotion, and the old leader rejoins (pg_rewind)
# without one.  The script checks all this itself and exits 0 only if every
# check passed; this test runs it on ports derived from the harness's and
# checks that it left nothing listening.
#
# Needs the Debian packages patroni and etcd-server (test/setup.sh).

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from examplelib import (example_env, listening, result_line,  # noqa: E402
                        run_example)
from tcclib import diag, done_testing, is_, ok  # noqa: E402

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


t0 = time.monotonic()
rc, lines = run_example("ha", example_env(**PORTS), RUN_TIMEOUT)

good = is_(rc, 0, "examples/ha/run.sh exits 0 (took %.0f s)"
           % (time.monotonic() - t0))
result = result_line(lines)
good &= ok(result and result.startswith("RESULT ok "),
           "its result line says ok: %s" % result)
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
