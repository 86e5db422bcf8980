"""Where time goes: wait-event samples, pg_stat_statements snapshots, and
the worker's memory contexts and private memory over time.

The wait sampler is a thread with a connection of its own (role bench,
application bench_sampler) that reads pg_stat_activity every 100 ms; the
statement snapshots and the samples stay in the benchmark's memory.
"""

import os
import re
import threading
import time

from . import procs

WAITS_SQL = """
SELECT backend_type,
       CASE WHEN backend_type = 'tcc coordinator'
            THEN COALESCE(NULLIF(query, ''), 'idle')
            WHEN state = 'active'
            THEN COALESCE(substring(query FROM 'tcc_[a-z]+'),
                          lower(split_part(btrim(query), ' ', 1)))
            ELSE state END,
       COALESCE(wait_event_type || ':' || wait_event, 'CPU')
  FROM pg_stat_activity
 WHERE pid <> pg_backend_pid()
   AND (backend_type = 'tcc coordinator'
        OR (backend_type = 'client backend' AND datname = 'bench'
            AND COALESCE(application_name, '') NOT IN ('bench_poll', 'bench_sampler')))
"""


class WaitSampler:
    """Samples pg_stat_activity every 100 ms until stopped or max_s pass."""

    def __init__(self, db, max_s):
        self.db = db
        self.max_s = max_s
        self.samples = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        """The thread: one query per sample."""
        deadline = time.monotonic() + self.max_s
        with self.db.connect("bench", "bench_sampler") as conn:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                self.samples += conn.execute(WAITS_SQL).fetchall()
                self.stopping.wait(0.1)

    def stop(self):
        """Stops sampling and waits for the thread."""
        self.stopping.set()
        self.thread.join(10)

    def show(self, title):
        """Prints where the sampled time went, per backend type."""
        print("  where time goes during %s (pg_stat_activity sampled every 100 ms):" % title)
        counts = {}
        for s in self.samples:
            counts[s] = counts.get(s, 0) + 1
        per_type = {}
        for (btype, act, wait), n in counts.items():
            per_type.setdefault(btype, []).append((n, act, wait))
        for btype in sorted(per_type, reverse=True):
            entries = sorted(per_type[btype], key=lambda e: -e[0])
            total = sum(e[0] for e in entries)
            for n, act, wait in entries[:8]:
                print("    %-16s %-20s %-28s %5.1f%%"
                      % (btype, (act or "")[:20], wait, 100.0 * n / total))


class Pgss:
    """pg_stat_statements snapshots by tag, and the top statements between
    two of them (the workload only: role bench is left out)."""

    def __init__(self, db, enabled):
        self.db = db
        self.enabled = enabled
        self.snaps = {}

    def snap(self, tag):
        """Saves a snapshot under a tag."""
        if not self.enabled:
            return
        rows = self.db.rows("""
            SELECT userid, queryid, toplevel, calls, total_exec_time, query
              FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench')
               AND userid <> 'bench'::regrole""")
        self.snaps[tag] = {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in rows}

    def top(self, before, after, title, limit=12):
        """Prints the statements that took the most time between two snapshots."""
        if not self.enabled:
            return
        print("  top statements by total time, %s (pg_stat_statements, track = all;" % title)
        print("  top y: a client's statement or the worker's own SQL; n: run inside a tcc_* function):")
        print("    %10s %9s %9s %3s  %s" % ("total_ms", "calls", "mean_ms", "top", "query"))
        a = self.snaps.get(before, {})
        out = []
        for key, (calls, total, query) in self.snaps.get(after, {}).items():
            c0, t0, _ = a.get(key, (0, 0.0, None))
            if calls - c0 > 0:
                out.append((total - t0, calls - c0, key[2], query))
        out.sort(key=lambda e: -e[0])
        for total, calls, toplevel, query in out[:limit]:
            print("    %10.0f %9d %9.3f %3s  %s"
                  % (total, calls, total / calls, "y" if toplevel else "n",
                     re.sub(r"\s+", " ", query)[:110]))


def worker_memory(b, tag):
    """Has the worker write its memory contexts to the server log; returns
    the grand total in bytes (or None) and keeps the five largest contexts
    in b.memory[tag] as text."""
    pid = b.worker_pid
    with open(b.cfg.pglog, "rb") as f:
        f.seek(0, os.SEEK_END)
        start = f.tell()
    b.db.q("SELECT pg_log_backend_memory_contexts(%s)", (pid,))
    marker = "[%d] LOG:  Grand total" % pid
    text = ""
    for _ in range(50):
        with open(b.cfg.pglog, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
        if marker in text:
            break
        time.sleep(0.1)
    contexts = []
    for line in text.splitlines():
        if "[%d] LOG:  level: " % pid not in line:
            continue
        m = re.search(r"level: ([0-9]+); ([0-9]+ more child contexts) containing ([0-9]+) total", line) \
            or re.search(r"level: ([0-9]+); ([^:]+): ([0-9]+) total", line)
        if m:
            contexts.append((int(m.group(3)), "%s (level %s)" % (m.group(2), m.group(1))))
    contexts.sort(key=lambda c: -c[0])
    b.memory[tag] = ", ".join("%s %d kB" % (name, n // 1024) for n, name in contexts[:5])
    m = re.search(r"\[%d\] LOG:  Grand total: ([0-9]+) bytes" % pid, text)
    return m.group(1) if m else None


class RssSampler:
    """Samples a process's RssAnon every interval seconds in a thread:
    the series, and the largest value of each phase (set_phase)."""

    def __init__(self, pid, interval=0.5):
        self.pid = pid
        self.interval = interval
        self.phase = "start"
        self.max = {}
        self.series = []
        self.t0 = time.monotonic()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def set_phase(self, phase):
        """Samples from now on count for this phase."""
        self.take()
        self.phase = phase

    def take(self):
        """One sample now."""
        _, _, anon = procs.proc_usage(self.pid)
        if anon is None:
            return
        self.series.append((round(time.monotonic() - self.t0, 1), anon))
        self.max[self.phase] = max(self.max.get(self.phase, 0), anon)

    def _run(self):
        """The thread."""
        while not self.stopping.is_set():
            self.take()
            self.stopping.wait(self.interval)

    def stop(self):
        """Stops sampling (after a last sample)."""
        self.stopping.set()
        self.thread.join(10)
        self.take()
