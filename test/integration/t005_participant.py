#!/usr/bin/python3
# Self-test of the test participant (test/participant.py), which every other
# test relies on to play the HTTP side of docs/protocol.md: rules (status,
# body, delay, Retry-After, fail_next) are honoured and every request is
# recorded with the Tcc-* and Idempotency-Key headers parsed; down/up refuses
# and accepts connections.

import http.client
import os
import socket
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (diag, done_testing, is_, like, ok, q, q1,  # noqa: E402
                    tp_down, tp_requests, tp_reset, tp_rule, tp_up, tp_url)

PORT = int(os.environ["TCC_TP_PORT"])


def request(path, body=b"{}", headers=None, method="POST", conn=None):
    """One request; (status, headers dict, body text)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode()
        return resp.status, dict(resp.getheaders()), data
    finally:
        if own:
            conn.close()


tp_reset()

# tp.url and tp.config
is_(tp_url("/a/try"), "http://127.0.0.1:%d/a/try" % PORT,
    "tp.url uses the participant's port")

# No rule: 200 {"ok":true}, recorded with the protocol headers parsed.
gid = uuid.uuid4()
status, hdrs, body = request(
    "/acct/try?x=1", body=b'{"amount": 5}',
    headers={"Content-Type": "application/json", "Tcc-Gid": str(gid),
             "Tcc-Branch": "2", "Tcc-Op": "try",
             "Idempotency-Key": "%s.2.try" % gid, "X-Mixed-Case": "v"})
is_(status, 200, "no rule: 200")
is_(body, '{"ok":true}', "no rule: default body")
is_(hdrs.get("Content-Type"), "application/json", "default content type")
# The row is committed before the answer, so it is visible without waiting.
reqs = tp_requests(gid)
is_(len(reqs), 1, "request recorded before the answer")
r = reqs[0] if reqs else {}
is_(r.get("method"), "POST", "method recorded")
is_(r.get("path"), "/acct/try", "path recorded without query string")
is_(r.get("body"), '{"amount": 5}', "body recorded")
is_(str(r.get("gid")), str(gid), "Tcc-Gid parsed")
is_(r.get("branch"), 2, "Tcc-Branch parsed")
is_(r.get("op"), "try", "Tcc-Op parsed")
is_(r.get("idem"), "%s.2.try" % gid, "Idempotency-Key parsed")
is_(r.get("status"), 200, "answered status recorded")
is_((r.get("headers") or {}).get("X-Mixed-Case"), "v",
    "header names stored as sent")

# Unparsable protocol headers become NULL; the request is still answered.
status, _, _ = request("/junk", headers={"Tcc-Gid": "not-a-uuid",
                                         "Tcc-Branch": "x"})
r = tp_requests("/junk")
ok(status == 200 and r and r[0]["gid"] is None and r[0]["branch"] is None
   and r[0]["op"] is None and r[0]["idem"] is None,
   "bad or missing protocol headers recorded as NULL")

# A rule sets status, body, content type and Retry-After.
tp_rule("/acct/refuse", status=409, body='{"error":"no funds"}',
        retry_after="7", content_type="application/problem+json")
status, hdrs, body = request("/acct/refuse")
is_(status, 409, "rule status")
is_(body, '{"error":"no funds"}', "rule body")
is_(hdrs.get("Retry-After"), "7", "Retry-After header sent")
is_(hdrs.get("Content-Type"), "application/problem+json",
    "rule content type")
is_(q1("SELECT status FROM tp.requests WHERE path = '/acct/refuse'"), 409,
    "rule status recorded")

# fail_next: the next N calls get fail_status, then the normal status.
tp_rule("/acct/flaky", status=201, fail_next=2, fail_status=503)
got = [request("/acct/flaky")[0] for _ in range(3)]
is_(got, [503, 503, 201], "fail_next=2 fails two calls, then normal status")
is_([r["status"] for r in tp_requests("/acct/flaky")], [503, 503, 201],
    "failed statuses recorded")
is_(q1("SELECT fail_next FROM tp.rules WHERE path = '/acct/flaky'"), 0,
    "fail_next counted down to zero")

# Concurrent calls decrement fail_next exactly once each.
tp_rule("/acct/race", fail_next=5, fail_status=500)
results = []
threads = [threading.Thread(target=lambda: results.append(
    request("/acct/race")[0])) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
is_(sorted(results), [200] * 3 + [500] * 5,
    "fail_next is atomic under concurrent calls")

# delay_ms: the answer comes after the delay; the request is recorded first.
tp_rule("/acct/slow", delay_ms=400)
t0 = time.monotonic()
holder = {}
th = threading.Thread(target=lambda: holder.update(
    res=request("/acct/slow")))
th.start()
seen = False
while th.is_alive() and not seen:
    seen = bool(tp_requests("/acct/slow"))
    time.sleep(0.02)
th.join()
elapsed = time.monotonic() - t0
ok(elapsed >= 0.4, "delay_ms delays the answer (%.3f s)" % elapsed)
ok(seen, "a delayed request is recorded before it is answered")
is_(holder.get("res", (None,))[0], 200, "delayed request answered")

# Concurrent slow requests are served in parallel.
tp_rule("/acct/par", delay_ms=500)
t0 = time.monotonic()
threads = [threading.Thread(target=request, args=("/acct/par",))
           for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - t0
ok(elapsed < 2.0, "6 requests of 500 ms served concurrently (%.3f s)"
   % elapsed)

# Keep-alive: several requests on one connection, any method.
conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
got = [request("/ka/%d" % i, method=m, body=b"" if m == "GET" else b"x",
               conn=conn)[0]
       for i, m in enumerate(["GET", "POST", "PUT", "DELETE", "PATCH"])]
conn.close()
is_(got, [200] * 5, "keep-alive connection serves any method")
is_(q1("SELECT string_agg(method, ',' ORDER BY id) FROM tp.requests"
       " WHERE path LIKE '/ka/%'"), "GET,POST,PUT,DELETE,PATCH",
    "methods recorded")

# Expect: 100-continue (libcurl sends it for larger bodies) and a 1 MB body
# (the default tcc.max_payload_size) arrive intact.
big = b'{"pad":"' + b"x" * (1024 * 1024 - 10) + b'"}'
with socket.create_connection(("127.0.0.1", PORT), timeout=10) as s:
    s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % len(big))
    interim = s.recv(4096).decode()
    s.sendall(big)
    final = s.makefile("rb").readline().decode()
like(interim, r"^HTTP/1.1 100 ", "100 Continue for Expect: 100-continue")
like(final, r"^HTTP/1.1 200 ", "answered after the body")
is_(q1("SELECT length(body) FROM tp.requests WHERE path = '/big'"), len(big),
    "1 MB body recorded intact")

# Status 0: the connection is closed without an answer.
tp_rule("/acct/drop", status=0)
try:
    request("/acct/drop")
    dropped = False
except (http.client.RemoteDisconnected, ConnectionError):
    dropped = True
ok(dropped, "status 0 closes the connection without answering")

# Down: connections refused; up: served again on the same port.
tp_down()
is_(q1("SELECT down FROM tp.state"), True, "tp.state shows down")
try:
    request("/acct/while-down")
    refused = False
except ConnectionRefusedError:
    refused = True
ok(refused, "connection refused while down")
tp_up()
is_(q1("SELECT down FROM tp.state"), False, "tp.state shows up")
is_(request("/acct/after-up")[0], 200, "served again after up")
is_(q1("SELECT count(*) FROM tp.requests WHERE path = '/acct/while-down'"),
    0, "nothing recorded while down")

# SQL helpers: tp.wait_state and tp.wait_until poll.
is_(q1("SELECT tp.wait_state(false, '1 s')"), True, "tp.wait_state")
is_(q1("SELECT tp.wait_until($$(SELECT count(*) FROM tp.requests"
       " WHERE path = '/acct/after-up') = 1$$, '1 s')"), True,
    "tp.wait_until")

# tp.reset forgets rules and requests.
q("SELECT tp.reset()")
ok(q1("SELECT count(*) FROM tp.rules") == 0
   and q1("SELECT count(*) FROM tp.requests") == 0, "tp.reset empties both")
if not ok(request("/acct/refuse")[0] == 200, "no rule after reset"):
    diag("rules: %r" % (q("SELECT * FROM tp.rules"),))

tp_reset()
done_testing()
