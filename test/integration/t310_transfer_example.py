#!/usr/bin/python3
# The transfer example, the README's first command (examples/transfer/run.sh):
# it runs end to end on its own throwaway cluster and services, and its final
# balances and statuses are exact: docs/api.md (tcc_begin's 23505 for a
# repeated business key, TC001 for a refused try), docs/states.md (a refused
# try cancels; confirm survives a participant outage), docs/worker.md (retries
# with growing gaps), the operator's tcc_retry, tcc_run (docs/api.md, 1.1), and
# docs/protocol.md#participant-barrier (the banks use the barrier), and the
# console's login (README "The operations console": pg_hba.conf must ask
# for a password; the example asks every role for one).  It also
# stops everything it started, when it finishes and when it is interrupted, so
# it can be run again.

import os
import re
import http.cookiejar
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from examplelib import (example_env, listening, run_example,  # noqa: E402
                        script)
from tcclib import diag, done_testing, is_, like, ok  # noqa: E402

RUN_TIMEOUT = 240.0

RESULT = ("RESULT bank1.A=960.00/0.00 bank2.B=40.00/0.00 demo-1=confirmed"
          " demo-2=cancelled demo-3=confirmed demo-4=confirmed"
          " demo-5=confirmed")

def free_ports(n):
    """n distinct ports on 127.0.0.1 that nothing listens on now."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def processes_mentioning(text):
    """Pids of processes whose command line contains text."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            pids.append(int(d))
    return pids


class Demo:
    """examples/transfer/run.sh running on its own ports."""

    def __init__(self):
        self.ports = free_ports(4)
        env = example_env(TCC_DEMO_PORT=self.ports[0],
                          TCC_DEMO_BANK1_PORT=self.ports[1],
                          TCC_DEMO_BANK2_PORT=self.ports[2],
                          TCC_DEMO_CONSOLE_PORT=self.ports[3])
        self.proc = subprocess.Popen(["bash", script("transfer")], cwd="/",
                                     env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, pattern, timeout):
        """True once a line of output matches pattern."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(re.search(pattern, line) for line in self.lines):
                return True
            if self.proc.poll() is not None and not self.reader.is_alive():
                return False
            time.sleep(0.05)
        return False

    def finish(self, timeout=RUN_TIMEOUT):
        """Wait for the end; the exit status (None if it did not end)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.reader.join(10)
        return rc

    def output(self):
        return "\n".join(self.lines)

    def tmpdir(self):
        """The scratch directory the run announced."""
        for line in self.lines:
            m = re.search(r"a throwaway cluster in (\S+), port", line)
            if m:
                return m.group(1)
        return None

    def check_nothing_left(self, when):
        """Ports closed, scratch directory gone, no process left over."""
        tmp = self.tmpdir()
        ok(tmp is not None, "%s: the run announced its scratch directory"
           % when)
        if tmp is None:
            return
        ok(not os.path.exists(tmp),
           "%s: the scratch directory is removed" % when)
        is_(processes_mentioning(tmp), [],
            "%s: no process of the run is left" % when)
        is_([p for p in self.ports if listening(p)], [],
            "%s: nothing listens on the cluster's and services' ports"
            % when)


def section(text, number):
    """The part of the output from heading number to the next heading."""
    m = re.search(r"^ %d\. .*?(?=^ \d\. |^RESULT )" % number, text,
                  re.M | re.S)
    return m.group(0) if m else ""


def confirm_rows(text):
    """(at, gap, http) of bank2's confirms in the last attempts table."""
    tables = text.split("tcc.attempts of")
    rows = []
    for line in tables[-1].splitlines():
        m = re.match(r"\s+2 \| confirm \| +([\d.]+) \| +([\d.]*) \|"
                     r" +\d+ \| +(\d*) +\|", line)
        if m:
            rows.append((float(m.group(1)),
                         float(m.group(2)) if m.group(2) else None,
                         m.group(3)))
    return rows


def console_login(url, role, password):
    """Log in to the console at url; the overview page's text, the login
    page's when refused, or the error."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar))
    try:
        page = opener.open(url + "login", timeout=10).read().decode()
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrf": token, "role": role,
                                       "password": password}).encode()
        return opener.open(url + "login", data=form, timeout=10).read().decode()
    except urllib.error.HTTPError as e:
        return e.read().decode()
    except (OSError, AttributeError) as e:
        return "error: %s" % e


# ---- the whole demo
demo = Demo()
console = None
if demo.wait_for_line(r"==> operations console: ", 120):
    m = re.search(r"==> operations console: (\S+)  \(log in as role (\w+),"
                  r" password (\w+)\)", demo.output())
    console = m.groups() if m else None
ok(console and console[0] == "http://127.0.0.1:%d/" % demo.ports[3],
   "the run prints the console's URL and a login")
if console:
    like(console_login(*console), r"<h1>Overview</h1>",
         "logging in with it while the example runs shows the overview")
    # pg_hba.conf asks every role for its password over TCP: the
    # superuser, which has none, cannot log in to the console
    like(console_login(console[0], "postgres", "any password"),
         r"login refused: wrong role or password",
         "the console refuses postgres with any password")
rc = demo.finish()
out = demo.output()
is_(rc, 0, "run.sh exits 0")
if rc != 0:
    diag("\n".join(demo.lines[-60:]))
is_(demo.lines[-1] if demo.lines else None, RESULT,
    "final balances and statuses are exact")

s1 = section(out, 1)
like(s1, r"SQLSTATE 23505: tcc_begin failed",
     "1: the repeated business key is refused with 23505")
like(s1, r"demo-1 \| confirmed", "1: the transfer is confirmed")
like(s1, r"bank1 +1 +A +990\.00 +0\.00\n +bank2 +2 +B +10\.00 +0\.00",
     "1: A has 990.00, B 10.00, nothing frozen")

s2 = section(out, 2)
like(s2, r"SQLSTATE TC001: bank2's try failed",
     "2: the refused try raises TC001")
like(s2, r"demo-2 \| cancelled", "2: the transaction is cancelled")
like(s2, r"bank1 +1 +A +990\.00 +0\.00",
     "2: A's money came back (990.00, nothing frozen)")

s3 = section(out, 3)
like(s3, r"-- bank2 service stopped --\n.*decision",
     "3: bank2 stops between the tries and the decision")
like(s3, r"bank2 +2 +B +10\.00 +10\.00",
     "3: during the outage B's 10.00 is frozen")
rows = confirm_rows(s3)
failed = [r for r in rows if r[2] != "200"]
ok(len(failed) >= 4 and rows and rows[-1][2] == "200",
   "3: bank2's confirm failed at least 4 times, then succeeded")
gaps = [r[1] for r in failed[1:]]
ok(len(gaps) >= 3 and all(a < b for a, b in zip(gaps, gaps[1:])),
   "3: the gaps between failed confirms grow: %r" % (gaps,))
like(s3, r"Confirmed on its own", "3: it completes without anyone acting")

s4 = section(out, 4)
rows = confirm_rows(s4)
ok(len(rows) >= 5 and rows[-1][2] == "200",
   "4: bank2's confirm failed, then succeeded")
due = re.search(r"next attempt\s+is only due in (-?[\d.]+) s", s4)
done = re.search(r"Confirmed (-?[\d.]+) s after tcc_retry", s4)
ok(due and done and float(done.group(1)) < float(due.group(1)),
   "4: after tcc_retry the confirm came sooner than the backoff's next"
   " attempt (%s s instead of %s s)"
   % (done and done.group(1), due and due.group(1)))
like(s4, r"retry +\| postgres +\| t", "4: the retry is in tcc.actions")

s5 = section(out, 5)
like(s5, r"-f transfer_run\.sql", "5: the one-statement initiator runs")
like(s5, r'"frozen": "10\.00", "account": 1, "balance": "960\.00"',
     "5: tcc_run returns bank1's answer")
like(s5, r"demo-5 \| confirmed", "5: the tcc_run transfer is confirmed")
like(s5, r"bank1 +1 +A +960\.00 +0\.00\n +bank2 +2 +B +40\.00 +0\.00",
     "5: A has 960.00, B 40.00, nothing frozen")

demo.check_nothing_left("after a complete run")

# ---- interrupted half-way: everything stops all the same
demo = Demo()
started = demo.wait_for_line(r"^ 1\. A transfers", 120)
ok(started, "a second run gets to its first scenario")
if demo.proc.poll() is None:
    demo.proc.send_signal(signal.SIGTERM)
rc = demo.finish(60)
ok(rc is not None and rc != 0, "SIGTERM stops run.sh with a failure status")
demo.check_nothing_left("after SIGTERM")

# ---- a port in use: refused before anything starts
blocker = socket.socket()
blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
blocker.bind(("127.0.0.1", 0))
blocker.listen(1)
busy = blocker.getsockname()[1]
other = free_ports(2)
rc, lines = run_example("transfer",
                        example_env(TCC_DEMO_BANK2_PORT=busy,
                                    TCC_DEMO_PORT=other[0],
                                    TCC_DEMO_BANK1_PORT=other[1]), 60)
blocker.close()
ok(rc is not None and rc != 0, "a busy port makes run.sh fail")
like("\n".join(lines), r"port %d is in use" % busy, "and it says which port")

done_testing()
