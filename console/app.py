#!/usr/bin/python3
"""console/app.py - the tcc operations console, a small Flask application.

    /usr/bin/python3 console/app.py --db "host=127.0.0.1 port=5432 dbname=app"
                                    [--host 127.0.0.1] [--port 8080]

People log in with a PostgreSQL role and password; PostgreSQL checks them
(the console connects with them), and every page and action runs as that
role, so tcc's owner isolation and grants apply unchanged.  The credentials
stay in this process's memory, under a random session id that is the only
thing the browser's cookie holds; sessions expire after --session-minutes of
inactivity and on logout.  Actions are POSTs that carry the session's
anti-forgery token, and every answer says Cache-Control: no-store.

Pages: the overview (counts, charts, worker, tcc.attention, updated live
through server-sent events fed by LISTEN tcc_alert), the transaction list
(filters, keyset paging) and one transaction (branches, every call, actions,
Retry and Resolve).  The sessions live in sessions.py, the overview's
queries in overview.py; this file holds the routes.
"""

import argparse
import datetime
import hmac
import json
import os
import select
import threading
import time
import uuid

import psycopg2
import psycopg2.extensions
from flask import (Flask, Response, abort, g, redirect, render_template,
                   request, stream_with_context, url_for)

from overview import STATUSES, overview_data
from sessions import LoginTokens, Sessions

FINAL = ("confirmed", "cancelled", "resolved")
PAGE_SIZE = 50
COOKIE = "tcc_console"

app = Flask(__name__)
app.config["DSN"] = ""
app.config["SESSION_SECONDS"] = 30 * 60
app.config["CHART_HOURS"] = 3


SESSIONS = Sessions(lambda: app.config["SESSION_SECONDS"])
LOGIN_TOKENS = LoginTokens()


def connect(role, password):
    """A connection as role; PostgreSQL checks the password."""
    conn = psycopg2.connect(app.config["DSN"], user=role, password=password,
                            connect_timeout=10,
                            application_name="tcc console",
                            options="-c TimeZone=UTC -c statement_timeout=30s")
    conn.autocommit = True
    return conn


def db():
    """This request's connection, as the logged-in role."""
    if "conn" not in g:
        g.conn = connect(g.session["role"], g.session["password"])
    return g.conn


def rows(sql, args=None):
    """Run a query as the logged-in role; rows as dicts."""
    with db().cursor() as cur:
        cur.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def try_rows(sql, args=None):
    """Like rows, but (None, message) when the role may not read it."""
    try:
        return rows(sql, args), None
    except psycopg2.Error as e:
        return None, (e.pgerror or str(e)).strip().splitlines()[0]


@app.teardown_request
def close_connection(exc):
    """Close the request's connection."""
    conn = g.pop("conn", None)
    if conn is not None:
        conn.close()


@app.after_request
def no_store(resp):
    """Nothing is cached or framed; scripts only from this console."""
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'")
    return resp


@app.before_request
def load_session():
    """Find the session; pages other than login and static need one, and
    every POST must carry the session's anti-forgery token."""
    g.session = SESSIONS.get(request.cookies.get(COOKIE))
    if request.endpoint in ("login", "static"):
        return None
    if g.session is None:
        if request.method == "POST" or request.endpoint == "events":
            abort(403)
        return redirect(url_for("login", next=request.full_path))
    if request.method == "POST" and not check_csrf():
        abort(403)
    return None


def check_csrf():
    """True when the POST carries this session's anti-forgery token."""
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token", "")
    return (g.session is not None and
            hmac.compare_digest(sent.encode(), g.session["csrf"].encode()))


def flash(kind, text):
    """A message shown once on the next page of this session."""
    g.session["flash"].append((kind, text))


def take_messages():
    """The session's messages, removed from it: only whole pages (base.html)
    call this, so a live part fetched meanwhile cannot swallow them."""
    shown = []
    if g.get("session") is not None:
        shown, g.session["flash"] = g.session["flash"], []
    return shown


@app.context_processor
def common():
    """What every template may use."""
    return {"session": g.get("session"), "take_messages": take_messages,
            "statuses": STATUSES}


# ---------------------------------------------------------------- login

@app.route("/login", methods=["GET", "POST"])
def login():
    """The login form; on POST, PostgreSQL checks role and password."""
    error = None
    nxt = request.values.get("next", "")
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"
    if request.method == "POST":
        if not LOGIN_TOKENS.take(request.form.get("csrf", "")):
            abort(403)
        role = request.form.get("role", "")
        password = request.form.get("password", "")
        if not role or not password:
            error = "role and password are required"
        else:
            try:
                connect(role, password).close()
            except psycopg2.OperationalError:
                error = "login refused: wrong role or password"
        if error is None:
            resp = redirect(nxt)
            resp.set_cookie(COOKIE, SESSIONS.create(role, password),
                            httponly=True, samesite="Strict",
                            secure=request.is_secure)
            return resp
    return render_template("login.html", error=error, next=nxt,
                           csrf=LOGIN_TOKENS.issue()), (401 if error else 200)


@app.route("/logout", methods=["POST"])
def logout():
    """End the session."""
    SESSIONS.drop(request.cookies.get(COOKIE))
    resp = redirect(url_for("login"))
    resp.delete_cookie(COOKIE)
    return resp


# ---------------------------------------------------------------- overview

@app.route("/")
def overview():
    """The overview page."""
    return render_template("overview.html",
                           **overview_data(try_rows, app.config["CHART_HOURS"]))


@app.route("/part/overview")
def overview_part():
    """The live part of the overview, fetched again on each event."""
    return render_template("overview_part.html",
                           **overview_data(try_rows, app.config["CHART_HOURS"]))


# ---------------------------------------------------------------- list

def parse_time(s):
    """A timestamp from a filter field, or None."""
    s = (s or "").strip()
    if not s:
        return None
    try:
        return datetime.datetime.fromisoformat(s)
    except ValueError:
        abort(400, "bad time: %s" % s)


@app.route("/transactions")
def transactions():
    """Transactions, newest first, filtered, in pages of PAGE_SIZE.

    Keyset paging on tcc.transaction_list (newest first): the next page
    starts after the (created_at, gid) of the last row shown, so each page
    is one index range scan, however deep it is."""
    f = {k: request.args.get(k, "").strip()
         for k in ("status", "kind", "business_key", "gid", "from", "to")}
    where, args = [], []
    if f["status"]:
        if f["status"] not in STATUSES:
            abort(400, "unknown status")
        where.append("status = %s")
        args.append(f["status"])
        if f["status"] not in FINAL:
            # exactly the transactions not final have no finished_at: this
            # lets the scan use the small index of open transactions
            where.append("finished_at IS NULL")
    if f["kind"]:
        where.append("kind = %s")
        args.append(f["kind"])
    if f["business_key"]:
        where.append("business_key = %s")
        args.append(f["business_key"])
    if f["gid"]:
        # a gid or its first hex digits: a range of the primary key
        digits = "".join(c for c in f["gid"].lower() if c in "0123456789abcdef")
        if not digits or len(digits) > 32:
            abort(400, "gid: give a gid or its first hex digits")
        where.append("gid BETWEEN %s::uuid AND %s::uuid")
        args += [digits.ljust(32, "0"), digits.ljust(32, "f")]
    t_from, t_to = parse_time(f["from"]), parse_time(f["to"])
    if t_from:
        where.append("created_at >= %s")
        args.append(t_from)
    if t_to:
        where.append("created_at < %s")
        args.append(t_to)
    after = request.args.get("after", "")
    if after:
        try:
            at, gid = after.rsplit("|", 1)
        except ValueError:
            abort(400, "bad page mark")
        where.append("created_at <= %s::timestamptz"
                     " AND (created_at < %s::timestamptz OR gid < %s::uuid)")
        args += [at, at, gid]
    sql = ("SELECT gid, kind, business_key, status, owner, created_at,"
           "       finished_at, branches, attempts, last_error"
           "  FROM tcc.transaction_list"
           + (" WHERE " + " AND ".join(where) if where else "")
           # no ORDER BY here: the view's own order (newest first) is kept,
           # and only then does the LIMIT reach its index scan
           + " LIMIT %d" % (PAGE_SIZE + 1))
    try:
        found = rows(sql, args)
        error = None
    except psycopg2.Error as e:
        found, error = [], (e.pgerror or str(e)).strip().splitlines()[0]
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    next_args = None
    if more:
        last = found[-1]
        next_args = dict((k, v) for k, v in f.items() if v)
        next_args["after"] = "%s|%s" % (last["created_at"].isoformat(),
                                        last["gid"])
    return render_template("transactions.html", rows=found, f=f, error=error,
                           next_args=next_args, paged=bool(after),
                           first_args=dict((k, v) for k, v in f.items() if v))


# ---------------------------------------------------------------- one

def transaction_data(gid):
    """One transaction, its branches, calls and actions; 404 if the role
    cannot see it."""
    tx = rows("SELECT * FROM tcc.transactions WHERE gid = %s", (gid,))
    if not tx:
        abort(404)
    tx = tx[0]
    branches = rows("SELECT * FROM tcc.branches WHERE gid = %s ORDER BY branch",
                    (gid,))
    calls = rows("SELECT branch, op, started_at, duration_ms, http_status, error"
                 "  FROM tcc.attempts WHERE gid = %s ORDER BY started_at, branch",
                 (gid,))
    actions, actions_err = try_rows(
        "SELECT action, actor, at, note, applied FROM tcc.actions"
        " WHERE gid = %s ORDER BY at", (gid,))
    # the timeline: each call a bar from its start, scaled to the span
    t0 = tx["created_at"]
    ends = [c["started_at"] + datetime.timedelta(milliseconds=c["duration_ms"] or 0)
            for c in calls]
    span = max([(e - t0).total_seconds() for e in ends] + [0.001])
    for c in calls:
        c["x"] = 100.0 * (c["started_at"] - t0).total_seconds() / span
        c["w"] = max(100.0 * (c["duration_ms"] or 0) / 1000.0 / span, 0.4)
        c["offset_ms"] = (c["started_at"] - t0).total_seconds() * 1000
    return {"tx": tx, "branches": branches, "calls": calls,
            "actions": actions, "actions_err": actions_err, "span": span,
            "final": tx["status"] in FINAL}


def valid_gid(gid):
    """The gid as text, or 404 when it is no uuid."""
    try:
        return str(uuid.UUID(gid))
    except ValueError:
        abort(404)


@app.route("/tx/<gid>")
def transaction(gid):
    """One transaction."""
    return render_template("transaction.html", **transaction_data(valid_gid(gid)))


@app.route("/part/tx/<gid>")
def transaction_part(gid):
    """The live part of one transaction's page."""
    return render_template("transaction_part.html",
                           **transaction_data(valid_gid(gid)))


def act(gid, sql, args, done):
    """Run tcc_retry or tcc_resolve as the logged-in role; show its NOTICE
    (the transaction was already final: nothing done) or its error."""
    conn = db()
    del conn.notices[:]
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
        notes = [n.split(":", 1)[-1].strip() for n in conn.notices]
        if notes:
            flash("notice", "; ".join(notes))
        else:
            flash("ok", done)
    except psycopg2.Error as e:
        flash("error", (e.pgerror or str(e)).strip().splitlines()[0])
    return redirect(url_for("transaction", gid=gid))


@app.route("/tx/<gid>/retry", methods=["POST"])
def retry(gid):
    """The Retry button: tcc_retry(gid)."""
    gid = valid_gid(gid)
    return act(gid, "SELECT tcc_retry(%s)", (gid,),
               "retry recorded: the calls are due now")


@app.route("/tx/<gid>/resolve", methods=["POST"])
def resolve(gid):
    """The Resolve button: tcc_resolve(gid, note)."""
    gid = valid_gid(gid)
    note = request.form.get("note", "").strip()
    if not note:
        flash("error", "resolve needs a note: say how it was settled")
        return redirect(url_for("transaction", gid=gid))
    return act(gid, "SELECT tcc_resolve(%s, %s)", (gid, note),
               "resolved: no more calls will be made")


# ---------------------------------------------------------------- live

@app.route("/events")
def events():
    """Server-sent events: 'alert' for each NOTIFY tcc_alert (the payload
    as sent: gid, status, branch), and a 'tick' every two seconds so that
    pages also follow changes that send no alert.  Ends with the session."""
    sid = request.cookies.get(COOKIE)
    sess = g.session

    def stream():
        conn = connect(sess["role"], sess["password"])
        try:
            conn.cursor().execute("LISTEN tcc_alert")
            yield "retry: 2000\n\n"
            while SESSIONS.get(sid, touch=False) is not None:
                if select.select([conn], [], [], 2.0)[0]:
                    conn.poll()
                    while conn.notifies:
                        n = conn.notifies.pop(0)
                        yield "event: alert\ndata: %s\n\n" % json.dumps(
                            n.payload)
                else:
                    yield "event: tick\ndata: {}\n\n"
        finally:
            conn.close()

    resp = Response(stream_with_context(stream()), mimetype="text/event-stream")
    resp.headers["X-Accel-Buffering"] = "no"
    return resp


@app.template_filter("ts")
def format_ts(v):
    """A timestamp as shown: UTC, to the millisecond."""
    if v is None:
        return ""
    return v.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def main():
    """Parse the command line and serve."""
    ap = argparse.ArgumentParser(description="tcc operations console")
    ap.add_argument("--db", required=True,
                    help="libpq connection string of the coordinator database,"
                         " without user and password (those come from the login)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--session-minutes", type=float, default=30,
                    help="a session ends after this long without a request")
    ap.add_argument("--chart-hours", type=int, default=3)
    ap.add_argument("--pidfile", help="written once the console listens")
    ap.add_argument("--behind-proxy", action="store_true",
                    help="trust X-Forwarded-Proto and -Host from one proxy in"
                         " front (a TLS proxy: the cookie is then Secure)")
    a = ap.parse_args()
    if a.behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)
    app.config["DSN"] = a.db
    app.config["SESSION_SECONDS"] = a.session_minutes * 60
    app.config["CHART_HOURS"] = a.chart_hours
    if a.pidfile:
        # werkzeug binds before serving; write the pidfile from a thread
        # that waits until the port answers
        def announce():
            import socket
            while True:
                try:
                    socket.create_connection((a.host, a.port), 0.5).close()
                    break
                except OSError:
                    time.sleep(0.05)
            with open(a.pidfile, "w") as fh:
                fh.write("%d\n" % os.getpid())
        threading.Thread(target=announce, daemon=True).start()
    app.run(host=a.host, port=a.port, threaded=True, debug=False,
            use_reloader=False)


if __name__ == "__main__":
    main()
