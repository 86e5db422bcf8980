#!/usr/bin/python3
# Soak test of docs/guarantees.md (R1-R5) under random faults.
#
# N global transactions (env TCC_SOAK_N, default 300: under 40 s) are run
# by several concurrent client threads, each transaction following a plan
# drawn from a seeded RNG (env TCC_SOAK_SEED; the seed is printed):
#
#   - 1 to 3 branches; their tries may be refused (409), fail (5xx), time
#     out (tcc.request_timeout is 1 s here), lose the connection, or be slow
#   - their confirm / cancel endpoints may fail a few times (5xx, 429 with
#     Retry-After, 409), or time out / drop the connection for 2-6 s (an
#     outage)
#   - the caller commits a confirm, rolls back after tcc_finish(gid, true),
#     decides to cancel, rolls back, commits without deciding (the deadline
#     cancels), hits an error, or disconnects -- at read committed,
#     repeatable read or serializable, tcc_begin inside its transaction or
#     committed on its own; some have a 1 s deadline (decisions race it),
#     some run phase two in parallel
#
# while a fault thread terminates client backends in the middle of their
# transactions (pg_terminate_backend), SIGKILLs two of them (a crash restart
# each), kills the worker once (SIGKILL or SIGTERM), takes the participant
# down for 2 s once and restarts the cluster once with -m immediate.
#
# When the faults stop (the participant answers 200 again) every transaction
# must reach a final state within SETTLE seconds, and then:
#
#   R2  a transaction whose caller saw COMMIT succeed after tcc_finish(gid,
#       true) is confirmed; one whose caller never committed a confirm is
#       cancelled
#   R3  none stays pending, none fails
#   R4  for every gid the participants saw confirms only or cancels only
#   R1  no try reached a participant for a branch the coordinator does not
#       know
#   R5  every branch whose try succeeded (2xx recorded) got at least one
#       phase-two call, and each branch's phase two ended with a 2xx of the
#       right operation; refused branches got no cancel
#   (docs/protocol.md) all phase-two calls of a branch carried the same
#       Idempotency-Key per op: <gid>.<branch>.<op>
#   (docs/states.md) confirm in registration order, cancel in reverse: a
#       branch's first call comes after the previous branch answered 2xx
#       (unless the transaction is parallel)
#
# Full size, 2000 transactions (about 80 s on two cores):
#   TCC_SOAK_N=2000 bash test/run.sh test/integration/t280_soak.py
# Repeat a run: add TCC_SOAK_SEED=<the seed printed>.  Fault timing depends on
# thread scheduling, so a seed repeats the plans, not every interleaving.

import os
import random
import signal
import sys
import threading
import time
import traceback

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (ISOLATION, RECOVERY_TIMEOUT, branch_urls,  # noqa: E402
                      explain_gid, max_connections, setting, sqlstate,
                      wait_cluster)
from tcclib import (diag, done_testing, is_, ok, q, q1, restart,  # noqa: E402
                    tp_down, tp_up, wait_until, worker_pid)

N = int(os.environ.get("TCC_SOAK_N", "300"))
SEED = int(os.environ.get("TCC_SOAK_SEED", random.randrange(1 << 31)))
CLIENTS = int(os.environ.get("TCC_SOAK_CLIENTS", "6"))
SETTLE = 60.0           # seconds after the faults stop
APP = "tcc soak client"
GATE_TIMEOUT = 60.0     # longest a client waits for a fault to be injected

# process faults, each due once this fraction of the plans has run
SCHEDULE = [(0.05, "terminate"), (0.15, "sigkill backend"),
            (0.30, "worker kill"), (0.40, "participant outage"),
            (0.50, "immediate restart"), (0.75, "sigkill backend")]
RUN = "%d-%d" % (SEED, int(time.time()))
ROOT = "/soak/%s" % RUN

diag("t280 soak: seed %d, %d transactions, %d clients"
     " (TCC_SOAK_SEED=%d TCC_SOAK_N=%d to repeat)"
     % (SEED, N, CLIENTS, SEED, N))


def weighted(rng, choices):
    """Pick a key of choices ({value: weight})."""
    total = sum(choices.values())
    x = rng.uniform(0, total)
    for value, weight in choices.items():
        x -= weight
        if x <= 0:
            return value
    return value


def make_plan(rng, i):
    """What transaction i does and which faults its participants inject."""
    branches = []
    for _ in range(rng.randint(1, 3)):
        branches.append({
            "try": weighted(rng, {"ok": 80, "refuse": 5, "5xx": 4,
                                  "timeout": 3, "close": 3, "slow": 5}),
            "phase2": weighted(rng, {"ok": 55, "fail": 20, "retry_after": 6,
                                     "conflict": 4, "timeout": 8,
                                     "close": 7}),
            "fail_n": rng.randint(1, 4),
            "outage_s": rng.uniform(2.0, 6.0),
            "fail_status": rng.choice([500, 502, 503, 504]),
        })
    return {
        "i": i,
        "isolation": weighted(rng, {"read committed": 70,
                                    "repeatable read": 15,
                                    "serializable": 15}),
        "begin": weighted(rng, {"in transaction": 85, "autocommit": 15}),
        "timeout": ("1 s" if rng.random() < 0.15
                    else "%d s" % rng.randint(5, 15)),
        "parallel": rng.random() < 0.2,
        "ending": weighted(rng, {"commit": 55, "rollback after finish": 10,
                                 "finish false": 10, "rollback": 10,
                                 "undecided": 5, "disconnect": 5,
                                 "error": 5}),
        "branches": branches,
    }


def rules_for(plan):
    """(path, rule keywords, outage seconds or None) for the participant,
    per branch of a plan.  Timeouts and dropped connections on phase two
    are outages: they last a few seconds, then the path is healed."""
    rules = []
    for k, b in enumerate(plan["branches"], 1):
        base = "%s/%d/%d" % (ROOT, plan["i"], k)
        t = b["try"]
        if t == "refuse":
            rules.append((base + "/try", {"status": 409}, None))
        elif t == "5xx":
            rules.append((base + "/try", {"status": b["fail_status"]}, None))
        elif t == "timeout":
            rules.append((base + "/try", {"delay_ms": 1500}, None))
        elif t == "close":
            rules.append((base + "/try", {"status": 0}, None))
        elif t == "slow":
            rules.append((base + "/try", {"delay_ms": 300}, None))
        p = b["phase2"]
        for op in ("confirm", "cancel"):
            path = "%s/%s" % (base, op)
            if p == "fail":
                rules.append((path, {"fail_next": b["fail_n"],
                                     "fail_status": b["fail_status"]}, None))
            elif p == "retry_after":
                rules.append((path, {"fail_next": 2, "fail_status": 429,
                                     "retry_after": "1"}, None))
            elif p == "conflict":
                rules.append((path, {"fail_next": 2, "fail_status": 409},
                              None))
            elif p == "timeout":
                rules.append((path, {"delay_ms": 1500}, b["outage_s"]))
            elif p == "close":
                rules.append((path, {"status": 0}, b["outage_s"]))
    return rules


RULE_SQL = ("SELECT tp.set_rule(%(path)s, status => %(status)s,"
            " delay_ms => %(delay_ms)s, retry_after => %(retry_after)s,"
            " fail_next => %(fail_next)s, fail_status => %(fail_status)s)")

BEGIN_SQL = "SELECT tcc_begin(%s::interval, 'soak', %s, %s)"


def connect_retrying(**kw):
    """A connection, waiting for the cluster while it restarts."""
    box = []

    def attempt():
        try:
            box.append(psycopg2.connect("", application_name=APP, **kw))
            return True
        except psycopg2.OperationalError:
            return False
    if not wait_until(attempt, RECOVERY_TIMEOUT, 0.2):
        raise RuntimeError("could not connect for %.0f s" % RECOVERY_TIMEOUT)
    return box[0]


class Client(threading.Thread):
    """Runs plans from a shared list until it is empty."""

    def __init__(self, plans, gate, results, progress, outages, faults):
        super().__init__(daemon=True)
        self.gate = gate
        self.lock = gate        # guards plans, results, progress, outages
        self.faults = faults
        self.outages = outages
        self.plans = plans
        self.results = results
        self.progress = progress
        self.conn = None
        self.aux = None
        self.crashed = None

    def next_plan(self):
        """The next plan.  Clients do not run far past the point where the
        next process fault is due until it has been injected, so that every
        fault happens while transactions are under way."""
        give_up = time.monotonic() + GATE_TIMEOUT
        with self.gate:
            while True:
                if not self.plans:
                    return None
                due = self.faults.next_due()
                if due is None or self.progress[0] < (due + 0.05) * N or \
                        time.monotonic() > give_up:
                    return self.plans.pop(0)
                self.gate.wait(0.1)

    def ensure(self):
        """Open connections that are gone."""
        if self.aux is None or self.aux.closed:
            self.aux = connect_retrying()
            self.aux.autocommit = True
        if self.conn is None or self.conn.closed:
            self.conn = connect_retrying()
            with self.conn.cursor() as cur:
                cur.execute("SET statement_timeout = '30s'")
            self.conn.commit()

    def drop(self):
        """Forget connections after an error that may have broken them."""
        for c in (self.conn, self.aux):
            if c is not None and not c.closed:
                try:
                    c.rollback()
                except psycopg2.Error:
                    try:
                        c.close()
                    except psycopg2.Error:
                        pass

    def run(self):
        try:
            while True:
                plan = self.next_plan()
                if plan is None:
                    return
                self.results[plan["i"]] = self.run_plan(plan)
                with self.lock:
                    self.progress[0] += 1
        except Exception:
            self.crashed = traceback.format_exc()
        finally:
            for c in (self.conn, self.aux):
                if c is not None:
                    try:
                        c.close()
                    except psycopg2.Error:
                        pass

    def value(self, conn, sql, params=None):
        with conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone() if cur.description else None
            return row[0] if row else None

    def run_plan(self, plan):
        """Run one plan; returns {gid, outcome, detail}.  outcome:
        committed (a confirm decision committed), aborted (it surely did
        not), unknown (the connection broke during COMMIT)."""
        res = {"gid": None, "outcome": "aborted", "detail": None,
               "error": None}
        for _ in range(3):
            try:
                self.ensure()
                for path, kw, outage in rules_for(plan):
                    args = {"status": 200, "delay_ms": 0,
                            "retry_after": None, "fail_next": 0,
                            "fail_status": 503}
                    args.update(kw)
                    args["path"] = path
                    self.value(self.aux, RULE_SQL, args)
                    if outage is not None:
                        with self.lock:
                            self.outages.append((time.monotonic() + outage,
                                                 path))
                break
            except psycopg2.Error:
                self.drop()
        else:
            res["detail"] = "could not set rules"
            return res

        conn = self.conn
        key = "%s-%d" % (RUN, plan["i"])
        try:
            conn.set_session(isolation_level=ISOLATION[plan["isolation"]])
            if plan["begin"] == "autocommit":
                res["gid"] = self.value(
                    self.aux, BEGIN_SQL,
                    (plan["timeout"], key, plan["parallel"]))
            else:
                res["gid"] = self.value(
                    conn, BEGIN_SQL, (plan["timeout"], key, plan["parallel"]))
            gid = res["gid"]
            for k in range(1, len(plan["branches"]) + 1):
                t, c, x = branch_urls("%s/%d/%d" % (ROOT, plan["i"], k))
                self.value(conn, "SELECT tcc_branch(%s, %s, %s, %s,"
                           " %s::jsonb)", (gid, t, c, x,
                                           '{"i": %d, "k": %d}'
                                           % (plan["i"], k)))
            ending = plan["ending"]
            if ending == "commit":
                self.value(conn, "SELECT tcc_finish(%s, true)", (gid,))
                res["outcome"] = "unknown"
                try:
                    conn.commit()
                    res["outcome"] = "committed"
                except psycopg2.Error as e:
                    # a lost connection, or the server terminating the
                    # session, leaves open whether the COMMIT happened
                    code = sqlstate(e) or ""
                    res["error"] = "COMMIT %s" % (code or "none")
                    res["detail"] = "commit: %s %s" % (
                        code, str(e).strip()[:80])
                    if code and code[:2] not in ("08", "57"):
                        res["outcome"] = "aborted"
                    self.drop()
                return res
            if ending == "rollback after finish":
                self.value(conn, "SELECT tcc_finish(%s, true)", (gid,))
                conn.rollback()
            elif ending == "finish false":
                self.value(conn, "SELECT tcc_finish(%s, false)", (gid,))
                conn.commit()
            elif ending == "rollback":
                conn.rollback()
            elif ending == "undecided":
                conn.commit()
            elif ending == "disconnect":
                conn.close()
            elif ending == "error":
                try:
                    self.value(conn, "SELECT 1 / 0")
                except psycopg2.DataError:
                    pass
                conn.rollback()
            res["detail"] = ending
        except psycopg2.Error as e:
            # any failure before COMMIT: the transaction cannot commit
            res["error"] = sqlstate(e) or "none"
            res["detail"] = "%s %s" % (sqlstate(e), str(e).strip()[:80])
            self.drop()
        return res


class Faults(threading.Thread):
    """Injects process faults while the clients run, paced by progress."""

    def __init__(self, rng, progress, stop, gate, outages):
        super().__init__(daemon=True)
        self.gate = gate
        self.lock = gate
        self.schedule = list(SCHEDULE)
        self.outages = outages
        self.rng = rng
        self.progress = progress
        self.stop = stop
        self.done = {"terminate": 0, "sigkill backend": 0,
                     "worker kill": None, "participant outage": 0,
                     "immediate restart": 0}
        self.error = None

    def victim(self, any_client=False):
        """A client backend in a transaction (or any client backend),
        or None."""
        rows = q("SELECT pid FROM pg_stat_activity"
                 " WHERE application_name = %s"
                 "   AND (backend_xid IS NOT NULL OR %s)", (APP, any_client))
        return self.rng.choice(rows)[0] if rows else None

    def next_due(self):
        """Progress fraction at which the next process fault is due."""
        return self.schedule[0][0] if self.schedule else None

    def run(self):
        try:
            while not self.stop.wait(self.rng.uniform(0.1, 0.5)):
                frac = self.progress[0] / float(N)
                try:
                    self.heal()
                    if self.schedule and frac >= self.schedule[0][0]:
                        self.inject(self.schedule[0][1])
                        with self.gate:
                            self.schedule.pop(0)
                            self.gate.notify_all()
                    else:
                        pid = self.victim()
                        if pid is not None and q1(
                                "SELECT pg_terminate_backend(%s)", (pid,)):
                            self.done["terminate"] += 1
                except psycopg2.OperationalError:
                    wait_cluster()
        except Exception:
            self.error = traceback.format_exc()

    def heal(self):
        """End the participant outages that have lasted long enough."""
        now = time.monotonic()
        with self.lock:
            over = [p for t, p in self.outages if t <= now]
            self.outages[:] = [(t, p) for t, p in self.outages if t > now]
        if over:
            q("DELETE FROM tp.rules WHERE path = ANY(%s)", (over,))

    def inject(self, what):
        if what == "terminate":
            pid = self.victim() or self.victim(any_client=True)
            if pid is not None and q1("SELECT pg_terminate_backend(%s)",
                                      (pid,)):
                self.done[what] += 1
        elif what == "sigkill backend":
            pid = self.victim() or self.victim(any_client=True)
            if pid is None:
                return
            old = worker_pid()
            os.kill(pid, signal.SIGKILL)
            wait_cluster(other_than=old)
            self.done[what] += 1
        elif what == "worker kill":
            sig = self.rng.choice([signal.SIGKILL, signal.SIGTERM])
            old = worker_pid()
            os.kill(old, sig)
            wait_cluster(other_than=old)
            self.done[what] = signal.Signals(sig).name
        elif what == "participant outage":
            # the participant refuses connections for two seconds: tries
            # fail, phase-two calls are retried
            tp_down()
            try:
                self.stop.wait(2.0)
            finally:
                tp_up()
            self.done[what] += 1
        elif what == "immediate restart":
            restart("immediate")
            wait_cluster()
            self.done[what] += 1


def check_order(requests_by_gid, gid, op):
    """Confirm ascending, cancel descending: each branch's first call of op
    comes after a 2xx call of op to the branch before it."""
    reqs = [r for r in requests_by_gid.get(gid, []) if r["op"] == op]
    called = sorted({r["branch"] for r in reqs}, reverse=(op == "cancel"))
    for prev, nxt in zip(called, called[1:]):
        first = min(r["id"] for r in reqs if r["branch"] == nxt)
        if not any(r["branch"] == prev and 200 <= r["status"] <= 299
                   and r["id"] < first for r in reqs):
            return "%s of branch %d before branch %d answered" % (op, nxt,
                                                                  prev)
    return None


def soak():
    rng = random.Random(SEED)
    plans = [make_plan(rng, i) for i in range(N)]
    gate = threading.Condition()
    results = {}
    progress = [0]
    stop = threading.Event()
    outages = []
    faults = Faults(random.Random(SEED + 1), progress, stop, gate, outages)
    clients = [Client(plans, gate, results, progress, outages, faults)
               for _ in range(CLIENTS)]
    t0 = time.monotonic()
    try:
        for c in clients:
            c.start()
        faults.start()
        for c in clients:
            c.join()
    finally:
        stop.set()
        faults.join(RECOVERY_TIMEOUT + 30)
    ran = time.monotonic() - t0
    diag("ran %d plans in %.1f s; faults: %r" % (len(results), ran,
                                                 faults.done))
    crashed = [c.crashed for c in clients if c.crashed]
    is_(crashed, [], "no client thread crashed")
    for c in crashed[:2]:
        diag(c)
    is_(faults.error, None, "the fault thread ran without error")
    if faults.error:
        diag(faults.error)
    is_(len(results), N, "every plan ran")
    ok(faults.done["terminate"] > 0 and faults.done["sigkill backend"] > 0
       and faults.done["worker kill"] and faults.done["immediate restart"]
       and faults.done["participant outage"],
       "every kind of fault was injected")

    # faults stop: every endpoint answers 200 at once again
    wait_cluster()
    q("DELETE FROM tp.rules WHERE starts_with(path, %s)", (ROOT + "/",))
    t1 = time.monotonic()
    left = []

    def settled():
        rows = q("SELECT count(*) FROM tcc.transactions"
                 " WHERE kind = 'soak' AND starts_with(business_key, %s)"
                 "   AND status NOT IN ('confirmed', 'cancelled')",
                 (RUN + "-",))
        left[:] = rows
        return rows[0][0] == 0
    ok(wait_until(settled, SETTLE, 0.25),
       "R3: every transaction final within %.0f s of the faults stopping"
       " (took %.1f s)" % (SETTLE, time.monotonic() - t1))

    # what the coordinator knows
    rows = q("SELECT gid::text, status, decided_by, parallel"
             "  FROM tcc.transactions"
             " WHERE kind = 'soak' AND starts_with(business_key, %s)",
             (RUN + "-",))
    txs = {g: (s, d) for g, s, d, _ in rows}
    parallel = {g: p for g, _, _, p in rows}
    branches = {}
    for g, b, s in q("SELECT gid::text, branch, status FROM tcc.branches"
                     " WHERE gid = ANY(%s::uuid[])", (list(txs),)):
        branches[(g, b)] = s
    refused = {(g, b) for g, b in q(
        "SELECT gid::text, branch FROM tcc.attempts"
        " WHERE gid = ANY(%s::uuid[]) AND op = 'try' AND http_status = 409",
        (list(txs),))}
    # what the participants saw
    by_gid = {}
    for rid, g, b, op, idem, st in q(
            "SELECT id, gid::text, branch, op, idem, status FROM tp.requests"
            " WHERE starts_with(path, %s) ORDER BY id", (ROOT + "/",)):
        by_gid.setdefault(g, []).append({"id": rid, "branch": b, "op": op,
                                         "idem": idem, "status": st})

    statuses = {}
    for s, _ in txs.values():
        statuses[s] = statuses.get(s, 0) + 1
    diag("final states: %r" % statuses)
    outcomes = {}
    for r in results.values():
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    diag("client outcomes: %r" % outcomes)
    errors = {}
    for r in results.values():
        if r["error"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    diag("client errors by SQLSTATE (none: connection lost): %r" % errors)

    problems = {"R2": [], "R3": [], "R4": [], "R1": [], "R5": [],
                "keys": [], "order": []}
    known = {r["gid"]: r for r in results.values() if r["gid"]}
    for gid in known:
        if gid not in txs:
            problems["R1"].append((gid, "begun but unknown to tcc"))
    for gid, (st, decided_by) in txs.items():
        reqs = by_gid.get(gid, [])
        ops = {r["op"] for r in reqs if r["op"] in ("confirm", "cancel")}
        if st not in ("confirmed", "cancelled"):
            problems["R3"].append((gid, st))
            continue
        if ops == {"confirm", "cancel"}:
            problems["R4"].append((gid, "confirm and cancel sent"))
        if st == "confirmed" and "cancel" in ops or \
                st == "cancelled" and "confirm" in ops:
            problems["R4"].append((gid, "%s but %s sent" % (st, ops)))
        r = known.get(gid)
        if r is not None:
            if r["outcome"] == "committed" and st != "confirmed":
                problems["R2"].append((gid, "committed, ended %s" % st))
            if r["outcome"] == "aborted" and st != "cancelled":
                problems["R2"].append((gid, "never committed a confirm,"
                                       " ended %s (%s)" % (st, r["detail"])))
        want = "confirm" if st == "confirmed" else "cancel"
        tried_ok = {x["branch"] for x in reqs
                    if x["op"] == "try" and 200 <= x["status"] <= 299}
        for b in {x["branch"] for x in reqs if x["op"] == "try"}:
            if (gid, b) not in branches:
                problems["R1"].append((gid, "try of unknown branch %d" % b))
        for (g, b), bst in branches.items():
            if g != gid:
                continue
            calls = [x for x in reqs if x["branch"] == b and x["op"] == want]
            if (g, b) in refused:
                if want == "cancel" and calls:
                    problems["R5"].append((gid, "refused branch %d got a"
                                           " cancel" % b))
                continue
            if b in tried_ok and not calls:
                problems["R5"].append((gid, "branch %d tried 2xx, no %s"
                                       % (b, want)))
            elif not any(200 <= x["status"] <= 299 for x in calls):
                problems["R5"].append((gid, "branch %d (%s): no 2xx %s"
                                       % (b, bst, want)))
        for x in reqs:
            if x["op"] in ("confirm", "cancel") and \
                    x["idem"] != "%s.%s.%s" % (gid, x["branch"], x["op"]):
                problems["keys"].append((gid, x["branch"], x["op"],
                                         x["idem"]))
        bad = None if parallel.get(gid) else check_order(by_gid, gid, want)
        if bad:
            problems["order"].append((gid, bad))
    for g in by_gid:
        if g not in txs:
            problems["R1"].append((g, "participant saw a gid tcc does not"
                                   " know"))

    names = {
        "R2": "R2: committed confirms confirmed, everything else cancelled",
        "R3": "R3: none left pending or failed",
        "R4": "R4: for every gid, confirms only or cancels only",
        "R1": "R1: no try for a branch the coordinator does not know",
        "R5": "R5: every tried branch got its phase-two call through",
        "keys": "docs/protocol.md: one Idempotency-Key <gid>.<branch>.<op>"
                " per branch and op",
        "order": "docs/states.md: confirm in order, cancel in reverse order",
    }
    shown = 0
    for k in ("R2", "R3", "R4", "R1", "R5", "keys", "order"):
        if not is_(problems[k][:5], [], "%s (%d problems)"
                   % (names[k], len(problems[k]))):
            for p in problems[k][:2]:
                if shown < 4:
                    explain_gid(p[0])
                    shown += 1
    ok(statuses.get("confirmed", 0) > 0 and statuses.get("cancelled", 0) > 0,
       "both outcomes occurred")


with max_connections(300), setting("tcc.request_timeout", "1s"), \
        setting("tcc.max_attempts", "100000"):
    soak()

done_testing()
