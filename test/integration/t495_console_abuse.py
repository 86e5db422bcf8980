#!/usr/bin/python3
# The operations console under abuse, as a stranger and as a logged-in role
# would attack it (the console's contract: README "The operations
# console", its limits table).  Each part names what it checks:
#
#   streams    one session's 200 GET /events get at most
#              --max-streams-per-session streams, all sessions together at
#              most --max-streams; the live pages share one database
#              connection; other roles' pages keep working meanwhile
#   pages      a flood of page requests by one role holds at most
#              --db-connections database connections; another role's pages
#              keep working; the database keeps free connection slots
#   alerts     a stream passes on only alerts about transactions its role
#              may see, with the status read as that role, never a payload
#              as some role sent it
#   password   a request body over 64 KiB is refused (413) and a password
#              over 1024 bytes is refused (400) before any hashing: the
#              console's CPU does not move
#   nul        a NUL byte in a filter, a note, the role or the password is
#              a 400 with a message, not a 500
#   token      a login form's token works only in the browser that fetched
#              it, and fetching forms stores nothing (memory does not grow)
#   sessions   a role holds at most --sessions-per-role sessions
#   next       after login the console redirects only to a local path
#   throttle   failed logins per role and per client address: past the
#              free ones each attempt waits, twice as long each time, says
#              so, and does not reach PostgreSQL
#   idle       a session expires after --session-minutes without an action
#              of the person, however long a page stays open and live
#   outage     the database stopped: pages say so (503) and try again by
#              themselves, logins say so, open pages say so live and
#              recover once it is back, in Chromium
#
# Throughout, the console's CPU time and memory stay bounded and the most
# connections it held is reported.

import os
import re
import socket
import sys
import threading
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from consolelib import (PGPORT, ROOT, Browser, cpu_seconds,  # noqa: E402
                        extra_port, output_dir, password_roles, role_dsn,
                        start_console)
from coordlib import branch_urls, tp_rule  # noqa: E402
from coordlib import wait_final  # noqa: E402
from tcclib import (connect, diag, done_testing, is_, like, log_since,  # noqa: E402
                    log_size, ok, pg_ctl, q1, rss_anon_kb, wait_until)

import psycopg2  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

PORT, IDLE_PORT, DRIVER_PORT = extra_port(1), extra_port(3), extra_port(2)
BASE = "http://127.0.0.1:%d" % PORT
OUT = output_dir("console-abuse")
A, B, C = (("abuse_alice", "pw-alice-495"), ("abuse_bob", "pw-bob-495"),
           ("abuse_carol", "pw-carol-495"))
DB_CONNECTIONS = 8          # the console's defaults (README)
MAX_STREAMS, PER_SESSION = 32, 4


def begin(role, prefix):
    """A confirmed transaction of role; its gid."""
    conn = psycopg2.connect(role_dsn(*role))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT tcc_begin('1 min', 't495', %s)", (prefix,))
        gid = cur.fetchone()[0]
        cur.execute("SELECT tcc_branch(%s, %s, %s, %s)",
                    (gid,) + branch_urls(prefix))
        cur.execute("SELECT tcc_finish(%s, true)", (gid,))
    conn.close()
    return gid


def logged_in(role):
    """A browser logged in as role."""
    b = Browser(PORT)
    status = b.login(*role)[0]
    if status != 302:
        raise RuntimeError("login of %s: %s" % (role[0], status))
    return b


def pages_work(b, what):
    """The overview and the list answer 200 for browser b."""
    got = [b.get(p)[0] for p in ("/", "/transactions")]
    is_(got, [200, 200], "%s: the overview and the list answer 200" % what)


def db_sockets(pid):
    """The TCP connections process pid holds open to the database."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            m = re.match(r"socket:\[(\d+)\]",
                         os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    n = 0
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            # remote address:port, state (01: established), inode
            if (int(fields[2].split(":")[1], 16) == PGPORT and
                    fields[3] == "01" and fields[9] in inodes):
                n += 1
    return n


class Sampler(threading.Thread):
    """Every 50 ms, counts the console's connections to the database (its
    own sockets) and the client backends of the database; keeps the most
    of each."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.conn = None
        self.most_console = self.most_all = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.most_console = max(self.most_console, db_sockets(self.pid))
            try:
                if self.conn is None:
                    self.conn = connect()
                with self.conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM pg_stat_activity"
                                " WHERE backend_type = 'client backend'")
                    self.most_all = max(self.most_all, cur.fetchone()[0])
            except psycopg2.Error:
                # the database is stopped (outage): count again once back
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
            self.halt.wait(0.05)

    def stop(self):
        self.halt.set()
        self.join(10)
        if self.conn is not None:
            self.conn.close()


def open_stream(b, opened, refused):
    """GET /events of browser b: the stream goes to opened, a refusal's
    (status, body) to refused; False when the console did not answer."""
    try:
        s = b.stream(5)
    except OSError as e:
        refused.append(("no answer", str(e)))
        return False
    (opened if not isinstance(s, tuple) else refused).append(s)
    return True


def big_post(b, size):
    """Announce a login POST of size bytes, send none of it: the status
    the console answers with, and how long it took."""
    t0 = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    try:
        sock.sendall(("POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Cookie: %s\r\nContent-Type: application/"
                      "x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                      % (b.cookie_header(), size)).encode())
        head = sock.makefile("rb").readline().decode()
    except OSError as e:
        head = "no answer: %s" % e
    finally:
        sock.close()
    m = re.match(r"HTTP/1\.1 (\d+)", head)
    return (int(m.group(1)) if m else head), time.monotonic() - t0


def chromium():
    """Headless Chromium through chromium-driver."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(
        "/usr/bin/chromedriver", port=DRIVER_PORT,
        log_path=os.path.join(OUT, "chromedriver.log")), options=opts)
    d.set_page_load_timeout(30)
    return d


def live_state(driver):
    """The text of the page's live state, or ''."""
    try:
        found = driver.find_elements(By.ID, "live-state")
        return found[0].text if found else ""
    except WebDriverException:
        return ""


def db_state(stream, want, seconds):
    """True once stream says the database is want ("up" or "down")."""
    got = stream.events(seconds, until=lambda e, d: e == "db" and
                        ('"%s"' % want) in d)
    return any(e == "db" and ('"%s"' % want) in d for e, d in got)


tp_rule("/t495/a/1/confirm", status=200)
tp_rule("/t495/b/1/confirm", status=200)
console = idle = driver = sampler = None
stopped = False
with password_roles(dict([A, B, C])):
    try:
        gid_a, gid_b = begin(A, "/t495/a/1"), begin(B, "/t495/b/1")
        is_([wait_final(gid_a, 15), wait_final(gid_b, 15)],
            ["confirmed", "confirmed"], "alice's and bob's transactions")
        console = start_console(PORT, log_dir=OUT)
        pid = console.proc.pid
        cpu0, rss0 = cpu_seconds(pid), rss_anon_kb(pid)
        max_conn = int(q1("SHOW max_connections"))
        sampler = Sampler(pid)
        sampler.start()

        # ---- streams: one session asks for 200
        alice, bob = logged_in(A), logged_in(B)
        opened, refused = [], []
        for _ in range(200):
            if not open_stream(alice, opened, refused):
                break
        is_(len(opened), PER_SESSION,
            "streams: 200 GET /events of one session open %d streams"
            % PER_SESSION)
        is_(sorted(set(st for st, _ in refused)), [429],
            "streams: the other 196 are refused with 429")
        like(refused[0][1] if refused else "", r"this session already has 4"
             r" live pages open", "streams: saying why")
        more = [logged_in(A) for _ in range(9)]
        for b in more:
            for _ in range(PER_SESSION + 1):
                open_stream(b, opened, refused)
        is_(len(opened), MAX_STREAMS,
            "streams: ten sessions together get %d streams, no more"
            % MAX_STREAMS)
        like(refused[-1][1], r"already serves 32 live pages",
             "streams: the console says it is full")
        ok(all(db_state(s, "up", 10) for s in opened[:1]),
           "streams: the live pages are connected")
        ok(wait_until(lambda: db_sockets(pid) == 1, 10),
           "streams: %d open streams hold one database connection"
           % len(opened))
        pages_work(bob, "streams: while they are open, bob")
        for s in opened:
            s.close()

        def bob_streams():
            s = bob.stream(2)
            if isinstance(s, tuple):
                return False
            s.close()
            return True
        ok(wait_until(bob_streams, 10, 0.5),
           "streams: once they are closed, bob gets a stream again")

        # ---- pages: 12 requests at once from each of alice's 10 sessions
        answers = []

        def flood(b):
            try:
                answers.append(b.get("/", timeout=60)[0])
            except OSError as e:
                answers.append(str(e))
        threads = [threading.Thread(target=flood, args=(b,))
                   for b in [alice] + more for _ in range(12)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        bob_took = []
        for _ in range(3):
            t1 = time.monotonic()
            pages_work(bob, "pages: during alice's flood, bob")
            bob_took.append(time.monotonic() - t1)
        for t in threads:
            t.join(90)
        diag("pages: %d requests in %.1f s; bob's pages took %s s"
             % (len(threads), time.monotonic() - t0,
                ", ".join("%.2f" % x for x in bob_took)))
        is_(sorted(set(answers) - {200, 429, 503}), [],
            "pages: every request of the flood is answered 200, 429 or 503")
        diag("pages: %d served, %d refused at once with 429 (a session's"
             " share), %d with 503 (the console busy)"
             % (answers.count(200), answers.count(429), answers.count(503)))
        ok(sampler.most_console <= DB_CONNECTIONS + 1,
           "pages: the console held at most %d database connections (%d)"
           % (DB_CONNECTIONS + 1, sampler.most_console))
        ok(max_conn - sampler.most_all >= max_conn // 2,
           "pages: the database kept free slots (most in use %d of %d)"
           % (sampler.most_all, max_conn))

        # ---- alerts: bob's NOTIFYs reach alice's page only as her own
        watcher = logged_in(A)
        s = watcher.stream()
        ok(db_state(s, "up", 10), "alerts: alice's stream is connected")
        nb = psycopg2.connect(role_dsn(*B))
        nb.autocommit = True
        with nb.cursor() as cur:
            for payload in ('bob was here <b>',
                            '{"gid": "%s", "status": "failed"}' % gid_b,
                            '{"gid": "%s", "status": "pwned by bob"}' % gid_a):
                cur.execute("SELECT pg_notify('tcc_alert', %s)", (payload,))
        nb.close()
        got = s.events(6, until=lambda e, d: e == "alert")
        got += s.events(3)
        alerts = [d for e, d in got if e == "alert"]
        is_(alerts, ['{"gid": "%s", "status": "confirmed"}' % gid_a],
            "alerts: alice's page gets one alert, about her transaction,"
            " with its status as she sees it")
        ok(not any("bob" in d or str(gid_b) in d for _, d in got),
           "alerts: nothing of bob's text or transaction reaches her")
        s.close()

        # ---- password: sizes refused before anything is hashed
        cpu1 = cpu_seconds(pid)
        stranger = Browser(PORT)
        status, took = big_post(stranger, 10 << 20)
        is_(status, 413, "password: a 10 MB login is refused (413) before"
            " its body is read (%.2f s)" % took)
        answers = [stranger.post("/login", {
            "csrf": stranger.form_token(), "role": A[0],
            "password": "y" * 60000}) for _ in range(20)]
        is_(sorted(set(a[0] for a in answers)), [400],
            "password: 20 logins with 60,000-byte passwords get 400")
        like(answers[0][2], r"the password is too long: at most 1024 bytes",
             "password: saying why")
        used = cpu_seconds(pid) - cpu1
        diag("password: the console used %.2f CPU seconds for them" % used)
        ok(used < 2.0, "password: the console used little CPU (%.2f s)"
           % used)

        # ---- nul: a 400 with a message
        tok = alice.csrf("/tx/%s" % gid_a)
        for what, (status, _, body) in (
                ("a filter", alice.get("/transactions?kind=a%00b")),
                ("a note", alice.post("/tx/%s/resolve" % gid_a,
                                      {"csrf": tok, "note": "x\0y"})),
                ("the role", stranger.post("/login", {
                    "csrf": stranger.form_token(), "role": "ab\0use",
                    "password": "p"})),
                ("the password", stranger.post("/login", {
                    "csrf": stranger.form_token(), "role": A[0],
                    "password": "p\0q"}))):
            is_(status, 400, "nul: a NUL byte in %s is a 400" % what)
            like(body, r"NUL byte", "nul: saying why (%s)" % what)
        is_(q1("SELECT count(*) FROM tcc.actions WHERE gid = %s", (gid_a,)),
            0, "nul: nothing was resolved")

        # ---- token: bound to the browser
        x, y = Browser(PORT), Browser(PORT)
        x_token = x.form_token()
        y.form_token()
        status, headers, body = y.post("/login", {
            "csrf": x_token, "role": A[0], "password": A[1]})
        is_(status, 403, "token: another browser's login token is refused")
        like(body, r"not loaded by this browser", "token: saying why")
        ok("tcc_console" not in y.cookies, "token: and no session starts")
        status = Browser(PORT).post("/login", {
            "csrf": x_token, "role": A[0], "password": A[1]})[0]
        is_(status, 403, "token: so is a token sent without its cookie")
        is_(x.post("/login", {"csrf": x_token, "role": A[0],
                              "password": A[1]})[0], 302,
            "token: in its own browser it logs in")

        # ---- sessions: so many per role, the oldest goes first
        first = logged_in(C)
        for _ in range(15):
            logged_in(C)
        is_(first.get("/")[0], 200, "sessions: 16 sessions of one role live")
        logged_in(C)
        is_(first.get("/")[0], 302, "sessions: the 17th ends the oldest")

        # ---- next: only a local path
        page = Browser(PORT).get("/login?next=/%5Cevil.example/")[2]
        like(page, r'name="next" value="/"',
             "next: /\\evil.example/ is not kept in the form")
        for nxt in ("/\\evil.example/", "//evil.example/",
                    "https://evil.example/", "/\t/evil.example/",
                    "/%0d%0aLocation:x", " /evil"):
            headers = Browser(PORT).login(*A, nxt=nxt)[1]
            is_(headers.get("Location"), "/" if "%0d" not in nxt else nxt,
                "next: after login %r goes to a local path" % nxt)
        headers = Browser(PORT).login(*A, nxt="/transactions?kind=t495")[1]
        is_(headers.get("Location"), "/transactions?kind=t495",
            "next: a local path is kept")

        # ---- throttle: per role
        at = log_size()
        got = [Browser(PORT).login(C[0], "wrong") for _ in range(8)]
        is_([g[0] for g in got], [401] * 5 + [429] * 3,
            "throttle: 5 wrong passwords refused, then held (429)")
        like(got[5][2], r"too many failed logins for role abuse_carol: try"
             r" again in 1 s", "throttle: saying for how long")
        failed_pg = len(re.findall(r'password authentication failed for user'
                                   r' "abuse_carol"', log_since(at)))
        is_(failed_pg, 5, "throttle: the held attempts never reached"
            " PostgreSQL")
        t0 = time.monotonic()
        ok(wait_until(lambda: Browser(PORT).login(*C)[0] == 302, 5, 0.2),
           "throttle: after a second the right password logs in (%.1f s)"
           % (time.monotonic() - t0))

        # ---- token: fetching login forms stores nothing
        sys.path.insert(0, os.path.join(ROOT, "console"))
        import app as console_app  # noqa: E402
        web = console_app.app.test_client()
        web.get("/login")
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(3000):
            web.get("/login")
        # what the console's own files hold more (not Flask's caches)
        mine = [tracemalloc.Filter(True, os.path.join(ROOT, "console", "*"))]
        grown = sum(d.size_diff for d in tracemalloc.take_snapshot()
                    .filter_traces(mine).compare_to(before.filter_traces(mine),
                                                    "filename"))
        tracemalloc.stop()
        diag("token: 3000 login forms: %d bytes more held by the console"
             % grown)
        ok(grown < 20000, "token: 3000 login forms fetched keep nothing"
           " (%d bytes)" % grown)

        # ---- outage: the database stops and comes back
        driver = chromium()
        driver.get(BASE + "/login")
        driver.find_element(By.ID, "role").send_keys(A[0])
        driver.find_element(By.ID, "password").send_keys(A[1])
        driver.find_element(By.ID, "login").click()
        ok(wait_until(lambda: live_state(driver) == "on", 15),
           "outage: alice's overview is live in Chromium")
        raw = logged_in(A)
        tok = raw.csrf("/tx/%s" % gid_a)
        s = raw.stream()
        ok(db_state(s, "up", 10), "outage: a raw stream is connected")
        pg_ctl("stop", "-m", "fast", "-w")
        stopped = True
        ok(db_state(s, "down", 20),
           "outage: the stream says the database is unavailable")
        ok(wait_until(lambda: "database unavailable" in live_state(driver),
                      20), "outage: the open page says so: %r"
           % live_state(driver))
        status, _, body = raw.get("/")
        is_(status, 503, "outage: a page answers 503")
        like(body, r"cannot reach the database", "outage: saying why")
        like(body, r'<meta http-equiv="refresh" content="5;url=/\?">',
             "outage: and it tries again by itself")
        is_(raw.get("/part/overview")[0], 503,
            "outage: a live part answers 503")
        status, headers, _ = raw.post("/tx/%s/retry" % gid_a, {"csrf": tok})
        is_(status, 302, "outage: Retry goes back to the transaction")
        like(raw.get(headers.get("Location", "/"))[2],
             r"nothing was done: (?s:.*)cannot reach the database",
             "outage: whose page says nothing was done")
        status, _, body = Browser(PORT).login(*B)
        is_(status, 503, "outage: a login answers 503")
        like(body, r"the database is unavailable, so the login cannot be"
             r" checked", "outage: not 'wrong password'")
        driver.get(BASE + "/transactions")
        ok(driver.find_elements(By.ID, "unavailable"),
           "outage: Chromium shows the page saying so")
        pg_ctl("start", "-w", "-t", "60", "-l", os.environ["TCC_PGLOG"])
        stopped = False
        ok(db_state(s, "up", 30), "outage: the stream says it is back")
        s.close()
        ok(wait_until(lambda: driver.find_elements(By.ID, "transactions"),
                      30), "outage: the page in Chromium comes back by"
           " itself")
        driver.get(BASE + "/")
        ok(wait_until(lambda: live_state(driver) == "on", 15),
           "outage: and the overview is live again")
        is_(Browser(PORT).login(*B)[0], 302, "outage: logins work again")
        driver.quit()
        driver = None

        # ---- idle: live refreshes do not keep a session
        idle = start_console(IDLE_PORT, log_dir=OUT,
                             extra=["--session-minutes", "0.05"])
        person = Browser(IDLE_PORT)
        is_(person.login(*A)[0], 302, "idle: logged in (3 s sessions)")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            page = person.get("/")
            time.sleep(1)
        is_(page[0], 200, "idle: pages every second keep the session for 5 s")
        s = person.stream()
        t0 = time.monotonic()

        def expired():
            status = person.get("/part/overview")[0]
            return status == 302
        ok(wait_until(expired, 12, 0.5),
           "idle: with the page open and refreshing itself, the session"
           " ends (after %.1f s)" % (time.monotonic() - t0))
        s.events(5, until=lambda e, d: False)
        ok(s.ended, "idle: and its live stream ends")
        s.close()
        idle.stop()
        idle = None
        # ---- throttle: per address, at the end as it holds logins from
        # 127.0.0.1 for a while (every role above came from there)
        codes = []
        for i in range(30):
            status, _, body = Browser(PORT).login("nobody_%d" % i, "wrong")
            codes.append(status)
            if status == 429:
                break
        like(body, r"too many failed logins from your address \(127\.0\.0\.1\):"
             r" try again in 1 s", "throttle: the address is held too")
        ok(wait_until(lambda: Browser(PORT).login("nobody_x", "wrong")[0]
                      == 401, 5, 0.2), "throttle: one more attempt a second"
           " later")
        status, _, body = Browser(PORT).login("nobody_y", "wrong")
        like(body, r"from your address .*: try again in 2 s",
             "throttle: the wait doubles")
        sampler.stop()
        most, most_all, sampler = sampler.most_console, sampler.most_all, None

        # ---- the console's bill for all of the above
        cpu, rss = cpu_seconds(pid) - cpu0, rss_anon_kb(pid)
        diag("abuse: console CPU %.1f s, memory (RssAnon) %d kB -> %d kB;"
             " at most %d database connections of the console, %d of %d in"
             " all" % (cpu, rss0, rss, most, most_all, max_conn))
        ok(cpu < 10, "abuse: the console's CPU stayed bounded (%.1f s)" % cpu)
        ok(rss < 100000, "abuse: its memory stayed bounded (%d kB)" % rss)
    finally:
        if stopped:
            pg_ctl("start", "-w", "-t", "60", "-l", os.environ["TCC_PGLOG"])
        if driver is not None:
            driver.quit()
        if idle is not None:
            idle.stop()
        if sampler is not None:
            sampler.stop()
        if console is not None:
            console.stop()

done_testing()
