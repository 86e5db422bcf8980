"""console/overview.py - what the console's overview page shows.

The counts by status, the worker, the rows needing attention and the
per-minute charts, each read as the logged-in role through the function the
application passes in, so that a role sees what its grants let it see and an
error is shown in place of the part it concerns.
"""

import datetime

STATUSES = ["trying", "confirming", "cancelling", "confirmed", "cancelled",
            "failed", "resolved"]


def chart_points(series, key):
    """SVG polyline points for a per-minute series, and its maximum."""
    vals = [float(r[key] or 0) for r in series]
    top = max(vals + [0]) or 1
    n = max(len(vals) - 1, 1)
    pts = " ".join("%.1f,%.1f" % (40 + 560 * i / n, 130 - 120 * v / top)
                   for i, v in enumerate(vals))
    return pts, top


def overview_data(try_rows, hours):
    """Everything the overview shows, read as the logged-in role.

    Every query reads tcc.transaction_list by one of its indexes: the
    transactions not final (finished_at IS NULL, few however many are kept)
    or those created or finished within the charts' hours, so the overview
    stays quick on a table of millions (tcc.stats and tcc.attention read
    every row: the same counts and rows, taken the quick way).  try_rows
    runs a query as that role; hours is the charts' span."""
    open_counts, stats_err = try_rows(
        "SELECT status, count(*) AS n FROM tcc.transaction_list"
        " WHERE finished_at IS NULL GROUP BY status")
    ended, ended_err = try_rows(
        "SELECT status, count(*) AS n,"
        "       count(*) FILTER (WHERE finished_at > now() - interval '5 min') AS n5,"
        "       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(epoch FROM finished_at - decided_at) * 1000)"
        "           FILTER (WHERE finished_at > now() - interval '5 min') AS p50,"
        "       percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(epoch FROM finished_at - decided_at) * 1000)"
        "           FILTER (WHERE finished_at > now() - interval '5 min') AS p99"
        "  FROM tcc.transaction_list"
        " WHERE finished_at > now() - %s * interval '1 hour' GROUP BY status",
        (hours,))
    started5, _ = try_rows(
        "SELECT count(*) AS n FROM tcc.transaction_list"
        " WHERE created_at > now() - interval '5 min'")
    stats = None
    if open_counts is not None and ended is not None:
        stats = dict((s, 0) for s in STATUSES)
        for r in open_counts + ended:
            stats[r["status"]] = r["n"]
        stats["finished_5min"] = sum(r["n5"] for r in ended)
        stats["started_5min"] = started5[0]["n"] if started5 else None
        conf = [r for r in ended if r["status"] == "confirmed"]
        stats["confirm_p50_ms"] = conf[0]["p50"] if conf else None
        stats["confirm_p99_ms"] = conf[0]["p99"] if conf else None
    stats_err = stats_err or ended_err
    worker, worker_err = try_rows("SELECT * FROM tcc.worker")
    # the rows of tcc.attention: failed, or not final a minute past the
    # deadline
    attention, attention_err = try_rows(
        "SELECT gid, kind, business_key, status, owner, created_at,"
        "       CASE WHEN status = 'failed'"
        "            THEN 'failed: ' || COALESCE(last_error, 'attempts used up')"
        "            ELSE 'not final one minute after its deadline' END AS why"
        "  FROM tcc.transaction_list"
        " WHERE finished_at IS NULL"
        "   AND (status = 'failed' OR deadline + interval '1 min' < now())"
        " LIMIT 100")
    series, series_err = try_rows(
        "WITH m AS (SELECT generate_series(date_trunc('minute', now() - %s * interval '1 hour'),"
        "                                  date_trunc('minute', now()), interval '1 min') AS minute),"
        " s AS (SELECT date_trunc('minute', created_at) AS minute, count(*) AS n"
        "         FROM tcc.transaction_list WHERE created_at > now() - %s * interval '1 hour'"
        "        GROUP BY 1),"
        " f AS (SELECT date_trunc('minute', finished_at) AS minute, count(*) AS n,"
        "              avg(EXTRACT(epoch FROM finished_at - decided_at) * 1000)"
        "                  FILTER (WHERE status = 'confirmed') AS confirm_ms"
        "         FROM tcc.transaction_list WHERE finished_at > now() - %s * interval '1 hour'"
        "        GROUP BY 1)"
        "SELECT m.minute, COALESCE(s.n, 0) AS started, COALESCE(f.n, 0) AS finished,"
        "       f.confirm_ms"
        "  FROM m LEFT JOIN s USING (minute) LEFT JOIN f USING (minute)"
        " ORDER BY m.minute", (hours, hours, hours))
    charts = []
    if series:
        for key, title, unit in (("started", "started per minute", ""),
                                 ("finished", "finished per minute", ""),
                                 ("confirm_ms", "confirm latency, average per minute", " ms")):
            pts, top = chart_points(series, key)
            charts.append({"key": key, "title": title, "points": pts,
                           "top": top, "unit": unit,
                           "last": series[-1][key]})
    return {"stats": stats, "stats_err": stats_err,
            "worker": worker[0] if worker else None, "worker_err": worker_err,
            "attention": attention, "attention_err": attention_err,
            "charts": charts, "series_err": series_err, "hours": hours,
            "first": series[0]["minute"] if series else None,
            "now": datetime.datetime.now(datetime.timezone.utc)}
