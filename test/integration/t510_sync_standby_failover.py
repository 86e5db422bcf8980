#!/usr/bin/python3
# docs/guarantees.md#failover-to-a-synchronous-standby, "All rules hold across
# a failover to a synchronous standby ... nothing any participant was sent
# contradicts what the new primary does.  A standby runs no coordinator work
# until it is promoted." Checked with R1 (intent before effect), R2, R3 and R4.
#
# The test makes its own primary (PGPORT + 1) and a synchronous streaming
# standby taken with pg_basebackup (PGPORT + 2), both with tcc preloaded
# (clusterlib.py).  Under load -- deciding clients (begin, two tries, a row
# of their own, finish, COMMIT) and clients still trying (eight tries per
# transaction) at the test participant -- the primary's WAL sender is
# stopped with SIGSTOP, so the standby receives nothing more; the clients
# go on for 1.5 s; then every process of the primary is SIGKILLed and the
# standby is promoted.  Then:
#   - before the promotion the standby ran no coordinator worker and
#     refused tcc_begin (25006); once promoted it runs one;
#   - every try the participant received belongs to a branch the new
#     primary knows, and every such transaction settles there: the branch
#     gets its confirm or its cancel;
#   - no gid got both a confirm and a cancel;
#   - every COMMIT a client saw return is confirmed on the new primary, and
#     the row the client inserted in that transaction is there;
#   - (1.2, docs/views.md#metrics) no counter of tcc.metrics on the new
#     primary is below what any scrape of the old primary showed, though
#     a client with synchronous_commit = off kept trying during the stall
#     (its commits are seen before the standby has them: a scrape waits
#     until it has), and once all is settled each counter equals the
#     recount of the new primary's rows.

import os
import signal
import sys
import threading
import time

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import FINAL, branch_urls  # noqa: E402
from tcclib import (diag, done_testing, is_, note, ok, q,  # noqa: E402
                    wait_until)
from clusterlib import Cluster, port, proc_state, watchdog  # noqa: E402

DECIDERS = 6
TRIERS = 4
TRIER_BRANCHES = 8
WARMUP_COMMITS = 30     # commits before the stall (at most WARMUP s)
WARMUP = 10.0
STALL = 1.5             # clients go on while the standby receives nothing
SETTLE = 60.0
APP = "t510standby"

watchdog(180)
prefix = "/t510/%d" % int(time.time() * 1000)

primary = Cluster("t510-primary", port(1))
standby = Cluster("t510-standby", port(2))


class Load:
    """The client threads and what they saw."""

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.committed = []     # (gid, client) whose COMMIT returned
        self.errors = []
        self.threads = []

    def start(self):
        """Start the deciding and the trying clients."""
        for i in range(DECIDERS):
            self._spawn(i, 2, "d")
        for i in range(TRIERS):
            self._spawn(DECIDERS + i, TRIER_BRANCHES, "t")

    def _spawn(self, client, nbranches, kind):
        """Start one client thread."""
        t = threading.Thread(target=self._run, args=(client, nbranches, kind),
                             daemon=True)
        t.start()
        self.threads.append(t)

    def _run(self, client, nbranches, kind):
        """Global transactions one after the other until stopped or the
        primary is gone."""
        n = 0
        while not self.stop.is_set():
            try:
                conn = primary.connect(autocommit=False,
                                       application_name="t510 client")
            except Exception as e:
                self._error(client, e)
                return
            try:
                while not self.stop.is_set():
                    n += 1
                    with conn.cursor() as cur:
                        cur.execute("SELECT tcc_begin('60 s')::text")
                        gid = cur.fetchone()[0]
                        for b in range(nbranches):
                            urls = branch_urls("%s/%s%d/%d"
                                               % (prefix, kind, client, b))
                            cur.execute("SELECT tcc_branch(%s, %s, %s, %s)",
                                        (gid,) + urls)
                        cur.execute("INSERT INTO app_writes VALUES"
                                    " (%s, %s, %s)", (gid, client, n))
                        cur.execute("SELECT tcc_finish(%s, true)", (gid,))
                    conn.commit()
                    with self.lock:
                        self.committed.append((gid, client))
            except Exception as e:
                self._error(client, e)
                return
            finally:
                try:
                    conn.close()
                except Exception:
                    pass

    def _error(self, client, e):
        """Record the error that ended a client."""
        with self.lock:
            self.errors.append((client, str(e).strip().splitlines()[:1]))

    def count(self):
        """How many COMMITs returned so far."""
        with self.lock:
            return len(self.committed)

    def end(self, timeout=30):
        """Stop the clients; True once all have ended."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)


GAUGES = ("tcc_pending_transactions", "tcc_failed_transactions",
          "tcc_attention_transactions", "tcc_oldest_pending_age_seconds",
          "tcc_calls_in_flight", "tcc_worker_up")


def counters(rows):
    """{sample: value} of the counter and histogram rows of tcc.metrics."""
    return {tuple(r[:6]): r[6] for r in rows if r[0] not in GAUGES}


class Scrapes:
    """A client that tries with synchronous_commit off (begin, one try,
    COMMIT, undecided: the deadline cancels it) and a scraper of the
    primary's tcc.metrics; what every scrape that returned showed."""

    def __init__(self):
        self.stop = threading.Event()
        self.seen = []
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self._try, self._scrape)]

    def start(self):
        for t in self.threads:
            t.start()

    def _try(self):
        try:
            conn = psycopg2.connect(primary.dsn(),
                                    options="-c synchronous_commit=off")
            conn.autocommit = True
            n = 0
            while not self.stop.is_set():
                n += 1
                with conn.cursor() as cur:
                    cur.execute("SELECT tcc_begin('2 s')::text")
                    gid = cur.fetchone()[0]
                    cur.execute("SELECT tcc_branch(%s, %s, %s, %s)",
                                (gid,) + branch_urls("%s/a/%d" % (prefix, n)))
        except Exception:       # noqa: BLE001 - the primary is gone
            pass

    def _scrape(self):
        try:
            conn = primary.connect()
            while not self.stop.is_set():
                with conn.cursor() as cur:
                    cur.execute("SELECT * FROM tcc.metrics")
                    self.seen.append(counters(cur.fetchall()))
                time.sleep(0.05)
        except Exception:       # noqa: BLE001 - the primary is gone
            pass

    def end(self, timeout=30):
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)


def phase_two(gids):
    """{gid: {branch: set of ops}} of the confirms and cancels received."""
    seen = {}
    for gid, branch, op in q(
            "SELECT gid::text, branch, op FROM tp.requests"
            " WHERE starts_with(path, %s) AND op IN ('confirm', 'cancel')"
            "   AND gid = ANY(%s::uuid[])", (prefix + "/", gids)):
        seen.setdefault(gid, {}).setdefault(branch, set()).add(op)
    return seen


try:
    primary.init()
    primary.start()
    primary.q("CREATE EXTENSION tcc")
    primary.q("CREATE TABLE app_writes (gid uuid PRIMARY KEY,"
              " client int NOT NULL, n int NOT NULL)")
    standby.basebackup_from(primary, {
        "primary_conninfo": "'host=%s port=%d user=postgres"
                            " application_name=%s'" % (primary.dir,
                                                       primary.port, APP),
        # once promoted it stands alone: no standby to wait for
        "synchronous_standby_names": "''",
    })
    standby.start()
    primary.q("ALTER SYSTEM SET synchronous_standby_names = '%s'" % APP)
    primary.q("SELECT pg_reload_conf()")
    ok(wait_until(lambda: primary.q1(
        "SELECT sync_state FROM pg_stat_replication"
        " WHERE application_name = %s AND state = 'streaming'",
        (APP,)) == "sync", 30),
       "the standby streams from the primary as its synchronous standby")
    ok(wait_until(lambda: primary.pids_of("tcc coordinator"), 30),
       "the primary runs a coordinator worker")

    load = Load()
    scrapes = Scrapes()
    scrapes.start()
    load.start()
    wait_until(lambda: load.count() >= WARMUP_COMMITS, WARMUP, 0.1)
    before = load.count()
    ok(before > 0, "clients commit global transactions (%d before the"
       " stall)" % before)

    senders = primary.pids_of("walsender")
    is_(len(senders), 1, "the primary's WAL sender")
    for pid in senders:
        os.kill(pid, signal.SIGSTOP)
    ok(all(wait_until(lambda: proc_state(p) == "T", 5) for p in senders),
       "the WAL sender is stopped: the standby receives nothing more")
    stalled = time.monotonic()
    tries_before = q("SELECT count(*) FROM tp.requests"
                     " WHERE starts_with(path, %s) AND op = 'try'",
                     (prefix + "/",))[0][0]
    time.sleep(STALL)   # the load runs meanwhile; what it did is checked
    stalled = time.monotonic() - stalled
    primary.kill_all()
    note("primary killed %.1f s after the stall began; %d tries before the"
         " stall, %d after" % (stalled, tries_before,
                               q("SELECT count(*) FROM tp.requests"
                                 " WHERE starts_with(path, %s)"
                                 "   AND op = 'try'",
                                 (prefix + "/",))[0][0] - tries_before))
    ok(load.end(), "every client stopped once the primary was gone")
    ok(scrapes.end(), "the scraper stopped once the primary was gone")
    committed = list(load.committed)
    note("%d COMMITs returned to the clients, %d of them before the stall"
         % (len(committed), before))

    is_(standby.q1("SELECT pg_is_in_recovery()"), True,
        "the standby is still in recovery")
    is_(standby.pids_of("tcc coordinator"), [],
        "the standby runs no coordinator worker")
    # a gid the standby knows, still trying there
    trying = standby.q1("SELECT gid::text FROM tcc.transactions"
                        " WHERE status = 'trying' LIMIT 1")
    for what, sql, params in (
            ("tcc_begin", "SELECT tcc_begin()", None),
            ("tcc_branch", "SELECT tcc_branch(%s, %s, %s, %s)",
             (trying,) + branch_urls(prefix + "/standby"))):
        if what == "tcc_branch" and trying is None:
            continue
        conn = standby.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET statement_timeout = '10s'")
                try:
                    cur.execute(sql, params)
                    code = None
                except psycopg2.Error as e:
                    code = e.pgcode
        finally:
            conn.close()
        is_(code, "25006", "%s on the standby raises SQLSTATE 25006" % what)

    standby.promote()
    t0 = time.monotonic()
    ok(wait_until(lambda: standby.pids_of("tcc coordinator"), 30),
       "the promoted standby runs a coordinator worker (%.1f s)"
       % (time.monotonic() - t0))

    # every try the participant received, and what the new primary knows
    tried = sorted(set((g, b) for g, b in q(
        "SELECT gid::text, branch FROM tp.requests"
        " WHERE starts_with(path, %s) AND op = 'try'", (prefix + "/",))))
    tried_gids = sorted(set(g for g, _ in tried))
    known = set((g, b) for g, b in standby.q(
        "SELECT gid::text, branch FROM tcc.branches"
        " WHERE gid = ANY(%s::uuid[])", (tried_gids,)))
    unknown = [t for t in tried if t not in known]
    ok(not unknown, "every tried branch is known to the new primary"
       " (%d tried, %d unknown)" % (len(tried), len(unknown)))
    for g, b in unknown[:5]:
        diag("  unknown: gid %s branch %d" % (g, b))

    def statuses():
        """{gid: status} of every transaction on the new primary."""
        return dict(standby.q(
            "SELECT gid::text, status FROM tcc.transactions"))
    t0 = time.monotonic()
    ok(wait_until(lambda: all(s in FINAL for s in statuses().values()),
                  SETTLE, 0.2),
       "every transaction the new primary knows is final within %.0f s"
       " (took %.1f s)" % (SETTLE, time.monotonic() - t0))
    st = statuses()

    # the settled transactions' last calls were recorded before answered
    seen = phase_two(tried_gids)
    unsettled = []
    for g, b in tried:
        want = {"confirmed": "confirm", "cancelled": "cancel"}.get(st.get(g))
        if want is None or want not in seen.get(g, {}).get(b, set()):
            unsettled.append((g, b, st.get(g)))
    ok(not unsettled, "every tried branch got the confirm or cancel of"
       " its transaction's outcome (%d unsettled)" % len(unsettled))
    for u in unsettled[:5]:
        diag("  gid %s branch %d: %s" % u)

    all_gids = sorted(set(tried_gids) | set(st))
    seen = phase_two(all_gids)
    both = [g for g in all_gids
            if {"confirm", "cancel"} <= set().union(*seen.get(g, {}).values())]
    ok(not both, "no gid got both a confirm and a cancel (%d)" % len(both))
    for g in both[:5]:
        diag("  %s got confirm and cancel; now %s" % (g, st.get(g)))

    gids = [g for g, _ in committed]
    not_confirmed = [g for g in gids if st.get(g) != "confirmed"]
    ok(not not_confirmed, "every COMMIT a client saw is confirmed on the"
       " new primary (%d of %d not)" % (len(not_confirmed), len(gids)))
    for g in not_confirmed[:5]:
        diag("  %s: %s" % (g, st.get(g)))
    rows = set(standby.q("SELECT gid::text, client FROM app_writes"
                         " WHERE gid = ANY(%s::uuid[])", (gids,)))
    missing = [c for c in committed if c not in rows]
    ok(not missing, "every such client's own write is on the new primary"
       " (%d missing)" % len(missing))

    # the counters of the new primary: never below a scrape of the old one,
    # and, once all is settled and folded, the recount of its rows
    ok(len(scrapes.seen) > 0, "the old primary was scraped (%d times)"
       % len(scrapes.seen))
    ok(wait_until(lambda: standby.q1("SELECT count(*) FROM tcc.transactions"
                                     " WHERE finished_at IS NULL") == 0,
                  SETTLE, 0.2), "the undecided ones are cancelled too")
    now = counters(standby.q("SELECT * FROM tcc.metrics"))
    down = [(k, v, now.get(k, 0.0)) for m in scrapes.seen
            for k, v in m.items() if now.get(k, 0.0) < v - 1e-9 * max(1, v)]
    ok(not down, "no counter of the new primary is below what a scrape of"
       " the old primary showed (%d below)" % len(down))
    for d in down[:5]:
        diag("  %r: scraped %s, now %s" % d)
    recount = {tuple(r[:6]): r[6] for r in standby.q(
        "SELECT * FROM tcc._metric_counts(NULL)")}
    off = [(k, v, recount.get(k, 0.0)) for k, v in now.items()
           if abs(v - recount.get(k, 0.0)) > 1e-9 * max(1, abs(v))]
    ok(not off, "every counter of the new primary equals the recount of its"
       " rows (%d differ)" % len(off))
    for d in off[:5]:
        diag("  %r: counter %s, recount %s" % d)
finally:
    primary.stop()
    standby.stop()

done_testing()
