#!/usr/bin/python3
# Metrics for Prometheus: the view tcc.metrics, Debian's
# prometheus-postgres-exporter with monitoring/queries.yaml, and the alert
# rules' unit tests (promtool).
#
# docs/api.md#views (the views: what the metrics count is what they show;
# a role sees only its own transactions, so the metrics are read through a
# SECURITY DEFINER function granted to pg_monitor), docs/worker.md (retention
# deletes final transactions: the counters must not go down) and docs/states.md
# (final states).

import os
import re
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from consolelib import (ROOT, Server, extra_port, output_dir,  # noqa: E402
                        password_roles, role_dsn)
from coordlib import (branch_urls, connect, error_of, pgcode, run,  # noqa: E402
                      run1, system_settings, tp_rule, wait_final)
from tcclib import diag, done_testing, is_, ok, q, q1, wait_until  # noqa: E402

import psycopg2  # noqa: E402

EXPORTER_PORT = extra_port(5)
MON = ("t480_monitor", "pw-monitor-5")
PLAIN = ("t480_plain", "pw-plain-5")
KIND = "t480"
LOGS = output_dir("metrics")


def start(prefix, decide=True, expect_error=False, kind=KIND):
    """A transaction of kind t480 with one branch under prefix."""
    conn = connect()
    gid = run1(conn, "SELECT tcc_begin('1 min', %s)", (kind,))
    err = error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                   (gid,) + branch_urls(prefix))
    if not expect_error and err is None and decide is not None:
        run(conn, "SELECT tcc_finish(%s, %s)", (gid, decide))
    conn.close()
    return gid


def metrics():
    """tcc.metrics as {(metric, labels...): value}."""
    return {tuple(r[:6]): r[6] for r in q("SELECT * FROM tcc.metrics")}


def value(m, metric, **labels):
    """One sample of tcc.metrics (0 when absent)."""
    key = (metric, labels.get("status", ""), labels.get("kind", ""),
           labels.get("op", ""), labels.get("outcome", ""),
           labels.get("le", ""))
    return m.get(key, 0.0)


def outcome(status):
    """The outcome label of an HTTP status, as tcc.metrics names it."""
    if status is None:
        return "no_answer"
    if 200 <= status < 300:
        return "success"
    return "refused" if status == 409 else "error"


def unescape(v):
    """A label value of the text format: \\\\, \\" and \\n undone."""
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1),
                  v)


def scrape():
    """The exporter's tcc samples: {(name, frozenset(labels)): value}."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % EXPORTER_PORT,
                                timeout=20) as r:
        text = r.read().decode()
    out = {}
    # only \n ends a line: a label value may hold a raw \r
    for line in text.split("\n"):
        m = re.match(r'^(tcc_[a-z_]+)(?:\{(.*)\})? (\S+)$', line, re.S)
        if not m:
            continue
        labels = {k: unescape(v) for k, v in
                  re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "",
                             re.S)}
        labels.pop("server", None)
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def exported_name(row):
    """The exporter's (name, labels) for a tcc.metrics row; None for the
    +Inf bucket (the exporter derives it from _count)."""
    metric, status, kind, op, out, le = row
    labels = {}
    if metric == "tcc_transactions_total":
        labels = {"status": status, "kind": kind}
    elif metric == "tcc_calls_total":
        labels = {"op": op, "outcome": out}
    elif metric.endswith("_bucket"):
        if le == "+Inf":
            return None
        labels = {"le": le}
    return (metric, frozenset(labels.items()))


def compare_exporter(what):
    """Every tcc.metrics sample (but the age, which moves) equals the
    exporter's."""
    got = scrape()
    want = metrics()
    bad = []
    for row, v in want.items():
        if row[0] == "tcc_oldest_pending_age_seconds":
            continue
        key = exported_name(row)
        if key is None:
            continue
        if key not in got or abs(got[key] - v) > 1e-6 * max(1, abs(v)):
            bad.append((key[0], dict(key[1]), v, got.get(key)))
    ok(not bad and len(got) >= len(want) - 3,
       "%s: the exporter shows every sample of tcc.metrics with its value"
       % what)
    for b in bad[:10]:
        diag("differs: %r" % (b,))
    return got


tp_rule("/t480/fail/1/confirm", status=500, body="down")
tp_rule("/t480/no/1/try", status=409, body="no")

exporter = None
with password_roles(dict([MON]), app_grants=False, member_of="pg_monitor"), \
        password_roles(dict([PLAIN]), app_grants=False), \
        system_settings(max_attempts=2):
    try:
        m0 = metrics()
        confirmed = [start("/t480/ok/%d" % i) for i in range(3)]
        cancelled = start("/t480/cx/1", decide=False)
        refused = start("/t480/no/1", expect_error=True)
        failed = start("/t480/fail/1")
        # a kind the text format must escape: quote, backslash, newline
        odd = start("/t480/odd/1", decide=False, kind='t480 "odd" \\ \n.')
        for g in confirmed + [odd]:
            wait_final(g, 15)
        is_([wait_final(g, 15) for g in (cancelled, refused, failed)],
            ["cancelled", "cancelled", "failed"],
            "transactions: confirmed, cancelled, refused, failed")

        # ---- tcc.metrics against the views
        m = metrics()
        by_view = dict(q("SELECT status, count(*) FROM tcc.transactions"
                         " WHERE kind = %s GROUP BY status", (KIND,)))
        is_({s: value(m, "tcc_transactions_total", status=s, kind=KIND)
             for s in ("confirmed", "cancelled")},
            {"confirmed": 3.0, "cancelled": 2.0},
            "tcc_transactions_total by status and kind")
        is_(by_view.get("confirmed"), 3, "as tcc.transactions shows")
        ok(("tcc_transactions_total", "failed", KIND, "", "", "") not in m,
           "a failed transaction is not counted as ended")
        # the counters are kept as calls are made (docs/views.md#metrics):
        # what this test added is what its own transactions show
        mine = [str(g) for g in confirmed + [cancelled, refused, failed, odd]]
        calls = {}
        for op, st, n in q("SELECT op, http_status, count(*) FROM tcc.attempts"
                           " WHERE gid = ANY (%s::uuid[]) GROUP BY 1, 2",
                           (mine,)):
            k = ("tcc_calls_total", "", "", op, outcome(st), "")
            calls[k] = calls.get(k, 0) + n
        added = {k: v - m0.get(k, 0) for k, v in m.items()
                 if k[0] == "tcc_calls_total" and v != m0.get(k, 0)}
        is_(added, {k: float(v) for k, v in calls.items()},
            "tcc_calls_total by op and outcome: what tcc.attempts shows of"
            " this test's transactions was added")
        ok(value(m, "tcc_calls_total", op="confirm", outcome="error") >= 2 and
           value(m, "tcc_calls_total", op="try", outcome="refused") >= 1,
           "the failed confirms and the refused try are counted")
        is_(value(m, "tcc_failed_transactions"),
            float(q1("SELECT count(*) FROM tcc.transactions"
                     " WHERE status = 'failed'")),
            "tcc_failed_transactions: as tcc.transactions shows")
        is_(value(m, "tcc_attention_transactions"),
            float(q1("SELECT count(*) FROM tcc.attention")),
            "tcc_attention_transactions: as tcc.attention shows")
        is_(value(m, "tcc_pending_transactions"),
            float(q1("SELECT count(*) FROM tcc.pending")),
            "tcc_pending_transactions: as tcc.pending shows")
        is_(value(m, "tcc_worker_up"), 1.0, "tcc_worker_up is 1")
        ok(value(m, "tcc_oldest_pending_age_seconds") > 0,
           "tcc_oldest_pending_age_seconds > 0 (the failed one)")
        n = q1("SELECT count(*) FROM tcc.transactions WHERE status IN"
               " ('confirmed', 'cancelled') AND decided_at IS NOT NULL"
               " AND gid = ANY (%s::uuid[])", (mine,))
        is_(value(m, "tcc_settle_duration_seconds_count")
            - value(m0, "tcc_settle_duration_seconds_count"), float(n),
            "tcc_settle_duration_seconds_count: this test's decided and"
            " ended ones were added")
        is_(value(m, "tcc_settle_duration_seconds_bucket", le="+Inf"),
            value(m, "tcc_settle_duration_seconds_count"),
            "the +Inf bucket equals the count")

        is_(sorted(set(r[0] for r in q(
            "SELECT metric FROM tcc_metrics('{tcc_calls_total,tcc_worker_up}')"))),
            ["tcc_calls_total", "tcc_worker_up"],
            "tcc_metrics(families) gives those families only")

        # ---- who may read them
        mon = psycopg2.connect(role_dsn(*MON))
        mon.autocommit = True
        ok(error_of(mon, "SELECT count(*) FROM tcc.metrics") is None,
           "a member of pg_monitor reads tcc.metrics")
        is_(pgcode(error_of(mon, "SELECT count(*) FROM tcc.transactions")),
            "42501", "but not tcc.transactions")
        mon.close()
        plain = psycopg2.connect(role_dsn(*PLAIN))
        plain.autocommit = True
        is_(pgcode(error_of(plain, "SELECT count(*) FROM tcc.metrics")),
            "42501", "a role without a grant cannot read tcc.metrics")
        plain.close()

        # ---- the exporter, as the pg_monitor role, with the queries file
        env = dict(os.environ)
        env["DATA_SOURCE_NAME"] = role_dsn(*MON) + " sslmode=disable"
        exporter = Server("exporter", [
            "/usr/bin/prometheus-postgres-exporter",
            "--extend.query-path=" + os.path.join(ROOT, "monitoring",
                                                  "queries.yaml"),
            "--web.listen-address=127.0.0.1:%d" % EXPORTER_PORT],
            env=env, log_dir=LOGS)
        ok(exporter.wait_http("http://127.0.0.1:%d/metrics" % EXPORTER_PORT),
           "prometheus-postgres-exporter runs")
        got = compare_exporter("before retention")
        is_(got.get(("tcc_transactions_total",
                     frozenset({"status": "confirmed", "kind": KIND}.items()))),
            3.0, 'the exporter shows tcc_transactions_total{status="confirmed",'
            'kind="t480"} 3')
        is_(got.get(("tcc_worker_up", frozenset())), 1.0,
            "and tcc_worker_up 1")

        # ---- retention deletes them; the counters stay
        before = metrics()
        with system_settings(retention="1s"):
            gone = wait_until(lambda: q1(
                "SELECT count(*) FROM tcc.transactions WHERE gid = ANY(%s::uuid[])",
                (confirmed + [cancelled, refused, odd],)) == 0, 20)
            ok(gone, "tcc.retention = 1s deletes the ended transactions")
        after = metrics()
        down = [(k, v, after.get(k, 0)) for k, v in before.items()
                if not k[0].startswith(("tcc_pending", "tcc_failed",
                                        "tcc_attention", "tcc_oldest",
                                        "tcc_calls_in_flight", "tcc_worker"))
                # sums of seconds are floats added in another order
                and after.get(k, 0) < v - 1e-9 * max(1.0, abs(v))]
        is_(down, [], "no counter or histogram sample went down")
        is_(value(after, "tcc_transactions_total", status="confirmed",
                  kind=KIND), 3.0, "tcc_transactions_total still counts them")
        ok(wait_until(lambda: q1("SELECT count(*) FROM tcc._metric_total"
                                 " WHERE kind = %s", (KIND,)) > 0, 10),
           "the worker folds them into tcc._metric_total")
        compare_exporter("after retention")
    finally:
        if exporter is not None:
            exporter.stop()
        q("SELECT tcc_resolve(gid, 't480 cleanup') FROM tcc.transactions"
          " WHERE kind = %s AND status = 'failed'", (KIND,))

# ---- the alert rules' unit tests
r = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"],
                   cwd=os.path.join(ROOT, "monitoring"),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
if not is_(r.returncode, 0, "promtool test rules monitoring/alerts_test.yml"):
    diag(r.stdout)
r = subprocess.run(["promtool", "check", "rules", "alerts.yml"],
                   cwd=os.path.join(ROOT, "monitoring"),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
if not is_(r.returncode, 0, "promtool check rules monitoring/alerts.yml"):
    diag(r.stdout)

done_testing()
