#!/usr/bin/python3
# W3C trace context on every call (docs/protocol.md#trace-context), checked
# against a participant instrumented with the OpenTelemetry SDK and its W3C
# propagator (test/otel_participant.py):
#
#   caller's trace   tcc_begin(traceparent, tracestate): the participant's
#                    spans of the try and the confirm are in the caller's
#                    trace, each with a parent of its own (a span id per
#                    call, not the caller's), with the caller's tracestate;
#                    tcc.transactions shows the trace id
#   none given       the trace id is the gid's 32 hex digits, sampled
#   session setting  tcc.traceparent is used by tcc_run when it gets none
#   retry            a retried confirm is a new call: a new parent
#   not sampled      flags 00 reach the participant: its sampler, following
#                    its parent, records nothing
#
# The OpenTelemetry SDK comes from PyPI, pinned, into a virtual environment
# this test makes once (TCC_OTEL_VENV, default under /var/tmp) and reuses.

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import wait_final  # noqa: E402
from tcclib import (bail_out, connect, done_testing, is_, ok, q,  # noqa: E402
                    q1, run1, wait_until)

PINNED = ["opentelemetry-api==1.45.2", "opentelemetry-sdk==1.45.2",
          "opentelemetry-semantic-conventions==0.66b2",
          "typing_extensions==4.16.0"]
VENV = os.environ.get("TCC_OTEL_VENV",
                      "/var/tmp/tcc-otel-venv-%s" % PINNED[1].split("==")[1])
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(VENV, "bin", "python")
CHECK = "import opentelemetry.sdk.trace, opentelemetry.trace.propagation"


def venv_ready():
    """True when the virtual environment imports the SDK."""
    return os.path.exists(PY) and subprocess.run(
        [PY, "-c", CHECK], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0


if not venv_ready():
    # made beside its place and moved in whole: never half a venv there
    shutil.rmtree(VENV, ignore_errors=True)
    work = tempfile.mkdtemp(prefix="tcc-otel-", dir=os.path.dirname(VENV))
    made = subprocess.run(
        "/usr/bin/python3 -m venv %s/v && %s/v/bin/pip install -q"
        " --disable-pip-version-check %s" % (work, work, " ".join(PINNED)),
        shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    if made.returncode != 0:
        bail_out("could not install %s: %s" % (PINNED, made.stdout[-500:]))
    shutil.rmtree(VENV, ignore_errors=True)
    # bin/python finds the environment beside it, wherever it is moved
    os.rename(work + "/v", VENV)
    shutil.rmtree(work, ignore_errors=True)
    if not venv_ready():
        bail_out("the OpenTelemetry virtual environment does not work")

participant = subprocess.Popen([PY, os.path.join(HERE, "otel_participant.py")],
                               stdout=subprocess.PIPE, text=True)


def stop():
    """Stops the participant this test started, by its pid."""
    participant.terminate()
    participant.wait(10)


atexit.register(stop)
BASE = "http://127.0.0.1:%d" % int(participant.stdout.readline().split()[1])


def spans():
    """The participant's finished spans."""
    with urllib.request.urlopen(BASE + "/spans", timeout=10) as r:
        return json.loads(r.read())


def spans_of(trace_id, n):
    """Waits for n spans of trace_id; returns those seen."""
    got = []

    def enough():
        got[:] = [s for s in spans() if s["trace_id"] == trace_id]
        return len(got) >= n
    wait_until(enough, 10)
    return got


def urls(name):
    """Try, confirm and cancel URLs at the instrumented participant."""
    return tuple("%s/t812/%s/%s" % (BASE, name, op)
                 for op in ("try", "confirm", "cancel"))


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"

# ---- the caller's trace
gid = q1("SELECT tcc_begin('1 min', traceparent => %s, tracestate => %s)",
         ("00-%s-%s-01" % (TRACE, CALLER_SPAN), "vendor=abc,other=x"))
q("SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + urls("caller"))
q("SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid), "confirmed", "caller's trace: confirmed")
got = spans_of(TRACE, 2)
is_(sorted(s["name"].split()[0] for s in got), ["confirm", "try"],
    "caller's trace: the participant's spans of the try and the confirm are"
    " in the caller's trace")
parents = [s["parent_span_id"] for s in got]
ok(len(set(parents)) == 2 and CALLER_SPAN not in parents
   and None not in parents and "0" * 16 not in parents,
   "caller's trace: each call has a parent of its own (%s)" % parents)
is_({s["trace_state"] for s in got}, {"vendor=abc,other=x"},
    "caller's trace: the caller's tracestate reaches the participant")
is_(q1("SELECT trace_id FROM tcc.transactions WHERE gid = %s", (gid,)), TRACE,
    "caller's trace: tcc.transactions shows the trace id")

# ---- none given: the gid's digits
gid = q1("SELECT tcc_begin('1 min')")
q("SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + urls("none"))
q("SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid), "confirmed", "none given: confirmed")
own = str(gid).replace("-", "")
is_(q1("SELECT trace_id FROM tcc.transactions WHERE gid = %s", (gid,)), own,
    "none given: the trace id is the gid's 32 hex digits")
is_(len(spans_of(own, 2)), 2,
    "none given: the participant recorded (sampled) both calls in it")

# ---- the session setting, for tcc_run
SESSION = "0af7651916cd43dd8448eb211c80319c"
conn = connect(options="-c tcc.traceparent=00-%s-b7ad6b7169203331-01"
               % SESSION)
gid = run1(conn, "SELECT gid FROM tcc_run(%s)", (json.dumps([
    dict(zip(("try", "confirm", "cancel"), urls("session")))]),))
conn.close()
is_(wait_final(gid), "confirmed", "session setting: confirmed")
is_(len(spans_of(SESSION, 2)), 2,
    "session setting: tcc_run's calls are in the trace of tcc.traceparent")

# ---- retry: a new call, a new parent
RETRY = "11111111111111111111111111111111"
gid = q1("SELECT tcc_begin('1 min', traceparent => %s)",
         ("00-%s-2222222222222222-01" % RETRY,))
q("SELECT tcc_branch(%s, NULL, %s, NULL)",
  (gid, BASE + "/t812/retry/flaky"))
q("SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid), "confirmed", "retry: confirmed on the second attempt")
got = spans_of(RETRY, 2)
is_(len({s["parent_span_id"] for s in got}), 2,
    "retry: the two confirm calls have two parents")

# ---- not sampled
QUIET = "33333333333333333333333333333333"
gid = q1("SELECT tcc_begin('1 min', traceparent => %s)",
         ("00-%s-4444444444444444-00" % QUIET,))
q("SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + urls("quiet"))
q("SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid), "confirmed", "not sampled: confirmed")
ok(spans_of(SESSION, 2) and not [s for s in spans()
                                 if s["trace_id"] == QUIET],
   "not sampled: flags 00 reach the participant, which records no span")

done_testing()
