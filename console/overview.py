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

    Every query costs what it shows, not what is kept (docs/views.md):
    tcc.stats (counts by status from the transactions not final and the
    kept counts; the last five minutes), tcc.attention's rows (among the
    transactions not final), and the charts from tcc.activity, one row per
    minute.  try_rows runs a query as that role; hours is the charts'
    span."""
    rows, stats_err = try_rows("SELECT * FROM tcc.stats")
    stats = dict(rows[0]) if rows else None
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
        "                                  date_trunc('minute', now()), interval '1 min') AS minute)"
        "SELECT m.minute, COALESCE(a.started, 0) AS started,"
        "       COALESCE(a.finished, 0) AS finished, a.confirm_avg_ms AS confirm_ms"
        "  FROM m LEFT JOIN (SELECT * FROM tcc.activity"
        "                     WHERE minute >= date_trunc('minute', now() - %s * interval '1 hour')) a"
        "    ON a.minute = m.minute"
        " ORDER BY m.minute", (hours, hours))
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
