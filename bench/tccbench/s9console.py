"""S9's console pages: the operations console (console/app.py) started on
the bench cluster, logged in as postgres, and each page a person opens
timed over HTTP on loopback: the overview, the list with every filter, a
next page, one transaction.  The console's own time for a page is almost
all of it (the client parses nothing)."""

import http.client
import http.cookies
import os
import re
import statistics
import subprocess
import time
import urllib.parse

from . import procs
from .config import TARGETS
from .report import fmt


class Client:
    """One browser's cookies against the console."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def request(self, method, path, form=None):
        """(status, body) of one request; cookies kept."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": "; ".join("%s=%s" % kv for kv in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            for line in resp.headers.get_all("Set-Cookie") or []:
                c = http.cookies.SimpleCookie()
                c.load(line)
                for name, m in c.items():
                    self.cookies[name] = m.value
            return resp.status, text
        finally:
            conn.close()

    def login(self, role, password):
        """Logs in with the login form; True once the console took it."""
        page = self.request("GET", "/login")[1]
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        status, _ = self.request("POST", "/login", {
            "csrf": m.group(1) if m else "", "role": role, "password": password})
        return status in (302, 303)


def pages(b, gid, key, at):
    """(name, path) of the pages timed."""
    day = at[:10]
    q = urllib.parse.urlencode
    return [
        ("overview", "/"),
        ("list newest", "/transactions"),
        ("list failed", "/transactions?" + q({"status": "failed"})),
        ("list confirming", "/transactions?" + q({"status": "confirming"})),
        ("list cancelled", "/transactions?" + q({"status": "cancelled"})),
        ("list resolved (none)", "/transactions?" + q({"status": "resolved"})),
        ("list kind", "/transactions?" + q({"kind": "k3"})),
        ("list kind and day", "/transactions?" + q({"kind": "k3", "from": day + "T00:00",
                                                    "to": day + "T23:59"})),
        ("list business key", "/transactions?" + q({"business_key": key})),
        ("list gid prefix", "/transactions?" + q({"gid": gid[:6]})),
        ("list next page", "/transactions?" + q({"after": "%s|%s" % (at, gid)})),
        ("one transaction", "/tx/" + gid),
    ]


def run_pages(b, gid, key, at):
    """Starts the console, times each page S9_RUNS times (p50, ms), stops
    it; returns the slowest p50."""
    cfg, fig = b.cfg, b.fig
    port = cfg.stub_port + 7
    if procs.port_busy(port):
        raise procs.Failed("port %d is in use (the console's)" % port)
    log = open(os.path.join(cfg.logdir, "console.log"), "a")
    proc = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(cfg.root, "console", "app.py"),
         "--db", "host=127.0.0.1 port=%d dbname=bench" % cfg.port, "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    worst = 0.0
    try:
        procs.wait_port(port, proc, "the console")
        client = Client(port)
        if not client.login("postgres", "bench"):
            raise procs.Failed("the console did not log postgres in")
        print("  console pages (HTTP, console and database time):", flush=True)
        for name, path in pages(b, gid, key, at):
            runs, status = [], None
            for _ in range(5):
                t0 = time.perf_counter()
                status, _ = client.request("GET", path)
                runs.append((time.perf_counter() - t0) * 1000)
            p50 = statistics.median(runs)
            worst = max(worst, p50)
            print("  %-22s p50 %8s ms  max %8s ms  (HTTP %s)"
                  % (name, fmt(p50, 2), fmt(max(runs), 2), status), flush=True)
            if status != 200:
                b.report.anomaly("S9 console page %s answered %s" % (path, status))
            slug = re.sub(r"[^a-z0-9]+", "_", name).strip("_")
            fig("s9.page.%s.p50_ms" % slug, fmt(p50, 2))
    finally:
        procs.stop(proc)
        log.close()
    fig("s9.page_p50_max_ms", fmt(worst, 2))
    b.report.target("s9_page_ms", worst, "<=", TARGETS["s9_page_ms"])
    return worst
