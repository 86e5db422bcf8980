"""The run's shared state and the helpers every scenario uses: waiting for
transactions to settle, WAL and CPU figures, the worker's usage."""

import time

from . import procs
from .db import now
from .report import fmt


class Bench:
    """What a scenario works with: settings, report, database, stubs, worker."""

    def __init__(self, cfg, report, db, stubs, pgss):
        self.cfg = cfg
        self.report = report
        self.fig = report.fig
        self.anomaly = report.anomaly
        self.db = db
        self.q = db.q
        self.stubs = stubs
        self.pgss = pgss
        self.worker_pid = None
        self.memory = {}
        self.restarted_pids = []    # workers a scenario terminated on purpose
        self.cluster_restarted = False  # a scenario restarted the cluster
        self.start_usage = (None, None, None)
        self.mem_start = None

    # ------------------------------------------------------------ worker

    def find_worker(self, seconds=10):
        """The pid of the tcc coordinator worker (waits for it), or None."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pid = self.q("SELECT pid FROM pg_stat_activity"
                         " WHERE backend_type = 'tcc coordinator'")
            if pid:
                return pid
            time.sleep(0.1)
        return None

    def worker_cpu(self):
        """Worker CPU seconds now."""
        return procs.proc_usage(self.worker_pid)[0] or 0.0

    def worker_pids(self):
        """The pids of every tcc coordinator worker."""
        return [r[0] for r in self.db.rows(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tcc coordinator'"
            " ORDER BY pid")]

    def workers_cpu(self):
        """CPU seconds of every worker now, added up."""
        return sum(procs.proc_usage(p)[0] or 0.0 for p in self.worker_pids())

    def set_workers(self, n):
        """ALTER SYSTEM SET tcc.workers = n (None: RESET) and a restart of the
        cluster; waits for the workers and takes the first as the worker."""
        old = self.worker_pids()
        if n is None:
            self.db.app_q("ALTER SYSTEM RESET tcc.workers")
        else:
            self.db.app_q("ALTER SYSTEM SET tcc.workers = %d" % n)
        self.db.close()
        procs.restart_cluster(self.cfg)
        self.restarted_pids += old
        self.cluster_restarted = True
        want = n or 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == want:
                self.worker_pid = pids[0]
                print("  restarted with tcc.workers = %d: pids %s" % (want, pids), flush=True)
                return
            time.sleep(0.1)
        raise procs.Failed("%d tcc coordinator workers did not start" % want)

    def worker_rss_fig(self, path):
        """Records the worker's resident memory after a scenario."""
        _, rss, anon = procs.proc_usage(self.worker_pid)
        self.fig(path + ".worker_rss_kb", rss)
        self.fig(path + ".worker_rss_anon_kb", anon)

    # ------------------------------------------------------------ settling

    def open_count(self, kind):
        """Transactions of a kind that are not final (failed counts as final:
        it waits for a person); reads the table directly, so polls are cheap."""
        return self.q("SELECT count(*) FROM tcc._gtx WHERE kind = %s AND finished_at IS NULL"
                      " AND status IN ('trying', 'confirming', 'cancelling')", (kind,))

    def wait_settled(self, kind, limit, interval=0.25):
        """Waits until every transaction of a kind is final, polling every
        interval seconds; on timeout records an anomaly with evidence and
        returns False."""
        start = now()
        while True:
            left = self.open_count(kind)
            if left == 0:
                return True
            if now() - start > limit:
                by_status = self.q("""
                    SELECT string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n
                      FROM tcc.transactions WHERE kind = %s GROUP BY 1 ORDER BY 1) s""", (kind,))
                sample = self.q("""
                    SELECT string_agg(format('%%s/%%s %%s attempts=%%s http=%%s err=%%s next=%%s',
                           b.gid, b.branch, b.status, b.attempts, b.last_http_status,
                           b.last_error, b.next_attempt_at), ' | ')
                      FROM (SELECT b.* FROM tcc.branches b JOIN tcc._gtx g USING (gid)
                             WHERE g.kind = %s AND g.status IN ('trying', 'confirming', 'cancelling')
                             LIMIT 3) b""", (kind,))
                worker = self.q("SELECT format('pid=%%s in_flight=%%s queue=%%s err=%%s',"
                                " pid, in_flight, queue_depth, last_error) FROM tcc.worker")
                self.anomaly("%s transactions of kind %s not final after %ss: %s ; sample: %s ; worker: %s"
                             % (left, kind, limit, by_status, sample, worker))
                return False
            time.sleep(interval)

    def last_finished(self, kind):
        """When the last transaction of a kind became final (epoch seconds):
        finished_at, the start of the worker transaction that recorded it."""
        v = self.q("SELECT extract(epoch FROM max(finished_at)) FROM tcc._gtx"
                   " WHERE kind = %s", (kind,))
        return float(v) if v is not None else now()

    def lag_stats(self, kind):
        """Confirm lag (decided_at to finished_at) of a kind: p50, p99, max ms."""
        return self.db.row("""
            SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY l)::numeric, 3),
                   round(percentile_disc(0.99) WITHIN GROUP (ORDER BY l)::numeric, 3),
                   round(max(l)::numeric, 3)
              FROM (SELECT extract(epoch FROM finished_at - decided_at) * 1000 AS l
                      FROM tcc.transactions WHERE kind = %s AND status = 'confirmed') s""",
                           (kind,))

    # ------------------------------------------------------------ figures

    def wal_snap(self):
        """(WAL position, flushes, flush ms) now (a process's counters reach
        pg_stat_wal within about a second)."""
        return self.db.row("SELECT pg_current_wal_lsn() - '0/0', wal_sync, wal_sync_time"
                           " FROM pg_stat_wal")

    def wal_figs(self, path, gtx, a, b):
        """Records WAL figures between two wal_snap()s per gtx; returns
        (bytes, flushes, mean flush ms) per gtx as text."""
        if gtx <= 0:
            return None, None, None
        l0, s0, t0 = (float(x) for x in a)
        l1, s1, t1 = (float(x) for x in b)
        per = (fmt((l1 - l0) / gtx, 0), fmt((s1 - s0) / gtx, 2),
               fmt((t1 - t0) / (s1 - s0) if s1 > s0 else 0, 3))
        self.fig(path + ".wal_bytes_per_gtx", per[0])
        self.fig(path + ".wal_syncs_per_gtx", per[1])
        self.fig(path + ".wal_sync_mean_ms", per[2])
        return per

    def host_figs(self, path, a, b):
        """Records the machine's busy and steal percentages between two
        procs.host_cpu() readings; returns both as text."""
        (t0, i0, st0), (t1, i1, st1) = a, b
        busy = fmt(100 * (1 - (i1 - i0) / (t1 - t0)) if t1 > t0 else 0, 0)
        steal = fmt(100 * (st1 - st0) / (t1 - t0) if t1 > t0 else 0, 0)
        self.fig(path + ".host_cpu_busy_pct", busy)
        self.fig(path + ".host_cpu_steal_pct", steal)
        return busy, steal

    # ------------------------------------------------------------ workload

    def prepare_gtx(self, kind, n):
        """Creates n tried, undecided two-branch transactions of a kind from
        PREPARE_CLIENTS sessions; returns (count, seconds)."""
        from .config import PREPARE_CLIENTS
        per = (n + PREPARE_CLIENTS - 1) // PREPARE_CLIENTS
        t0 = now()
        self.db.pgbench(kind, PREPARE_CLIENTS, self.db.script("prepare"), "-t", str(per),
                        "-D", "kind=" + kind)
        secs = now() - t0
        prepared = self.q("SELECT count(*) FROM tcc.transactions"
                          " WHERE kind = %s AND status = 'trying'", (kind,))
        print("  prepared %d tried, undecided two-branch transactions in %ss"
              " (%s gtx/s from %d sessions)"
              % (prepared, fmt(secs, 2), fmt(prepared / secs, 0), PREPARE_CLIENTS), flush=True)
        return prepared, fmt(secs, 2)

    def decide_all(self, kind):
        """Decides every trying transaction of a kind in ONE transaction, so
        all decisions become visible at its COMMIT.  Returns (decided,
        seconds including the COMMIT, server clock just after it)."""
        t0 = now()
        with self.db.connect("postgres", "psql", autocommit=False) as conn:
            decided = conn.execute("""
                SELECT count(*) FILTER (WHERE tcc_finish(gid) = 'confirming')
                  FROM tcc.transactions WHERE kind = %s AND status = 'trying'""",
                                   (kind,)).fetchone()[0]
            conn.commit()
            conn.autocommit = True
            committed_at = float(conn.execute(
                "SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])
        return decided, fmt(committed_at - t0, 2), committed_at

    def decide_hanging(self, kind, n):
        """Decides n transactions of a kind whose one confirm goes to the
        hanging participant (no try), in one transaction."""
        self.db.app_q("""DO $$
            DECLARE g uuid;
            BEGIN
              FOR i IN 1..%d LOOP
                g := tcc_begin(interval '1 day', '%s');
                PERFORM tcc_branch(g, NULL, '%s/confirm', '%s/cancel');
                PERFORM tcc_finish(g);
              END LOOP;
            END $$""" % (n, kind, self.cfg.hang, self.cfg.hang))

    def resolve_kind(self, kind):
        """Resolves the transactions of a kind that are not final yet."""
        self.db.app_q("""SELECT count(tcc_resolve(gid, 'bench: hanging participant'))
                           FROM tcc.transactions WHERE kind = %s
                            AND status NOT IN ('confirmed', 'cancelled', 'resolved')""", (kind,))

    def set_retry(self, interval, max_interval):
        """ALTER SYSTEM SET (or RESET, with None) of the retry gaps; reload."""
        for name, v in (("tcc.retry_interval", interval), ("tcc.retry_max_interval", max_interval)):
            if v is None:
                self.q("ALTER SYSTEM RESET %s" % name)
            else:
                self.q("ALTER SYSTEM SET %s = '%s'" % (name, v))
        self.q("SELECT pg_reload_conf()")
