#!/usr/bin/python3
"""console/app.py - the tcc operations console, a small Flask application.

    /usr/bin/python3 console/app.py --db "host=127.0.0.1 port=5432 dbname=app"
                                    [--port 8080] [--config FILE] [...]

People log in with a PostgreSQL role and password; PostgreSQL checks them
(the console connects with them), and every page and action runs as that
role, so tcc's owner isolation and grants apply unchanged.  The credentials
stay in this process's memory, under a random session id that is the only
thing the browser's cookie holds; sessions expire after --session-minutes
without an action of the person, and on logout.  Actions are POSTs that
carry the session's anti-forgery token, and every answer says
Cache-Control: no-store.

Pages: the overview (counts, charts, worker, tcc.attention), the
transaction list (filters, keyset paging) and one transaction (branches,
every call, actions, Retry and Resolve); open pages update themselves
through server-sent events (live.py).  Everything a request may cost is
bounded (options.py holds the limits): it is served by waitress with a
fixed number of threads, the database connections it opens are counted by
one gate (database.py), and sessions, live streams and failed logins are
bounded (sessions.py, live.py).  The overview's queries are in
overview.py; this file holds the routes.
"""

import datetime
import hmac
import logging
import os
import uuid

import psycopg2
from flask import (Flask, Response, abort, g, redirect, render_template,
                   request, url_for)

import options
from database import (Busy, Checked, Gate, Refused, Unavailable, connect,
                      connection_lost, first_line)
from live import EventStream, Full, Hub
from overview import STATUSES, overview_data
from sessions import LoginForms, LoginThrottle, Sessions, TooMany

FINAL = ("confirmed", "cancelled", "resolved")
PAGE_SIZE = 50
COOKIE = "tcc_console"
LOGIN_COOKIE = "tcc_login"
# a request's body, a password and a role name are refused past these,
# before anything is hashed or connected
MAX_REQUEST_BYTES = 64 * 1024
MAX_PASSWORD_BYTES = 1024
MAX_ROLE_BYTES = 63
# what an open page fetches by itself: these do not count as the person's
# action, so a page left open still expires
PASSIVE = ("events", "overview_part", "transaction_part", "static")

app = Flask(__name__)
app.config["OPT"] = options.defaults()
app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
log = logging.getLogger("tcc.console")


def opt(name):
    """The current value of a setting (options.py)."""
    return getattr(app.config["OPT"], name)


SESSIONS = Sessions(lambda: opt("session_minutes") * 60,
                    lambda: opt("sessions_per_role"),
                    lambda: opt("max_sessions"))
LOGIN_FORMS = LoginForms()
THROTTLE = LoginThrottle(lambda: opt("login_failures_per_role"),
                         lambda: opt("login_failures_per_address"))
GATE = Gate(lambda: opt("db_connections"),
            lambda: opt("db_connections_per_session"))
HUB = Hub(lambda role, password: connect(opt("db"), role, password),
          lambda: opt("max_streams"), lambda: opt("max_streams_per_session"))


def db():
    """This request's connection, as the logged-in role (through the
    gate: Busy when the session or the console holds its share)."""
    if "conn" not in g:
        key = ("session", g.sid)
        GATE.acquire(key)
        try:
            g.conn = connect(opt("db"), g.session["role"],
                             g.session["password"])
        except BaseException:
            GATE.release(key)
            raise
        g.conn_key = key
    return g.conn


def rows(sql, args=None):
    """Run a query as the logged-in role; rows as dicts.  A connection
    that went away is Unavailable."""
    try:
        with db().cursor() as cur:
            cur.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
    except psycopg2.Error as e:
        if connection_lost(e):
            raise Unavailable(first_line(e)) from e
        raise


def try_rows(sql, args=None):
    """Like rows, but (None, message) when the role may not read it."""
    try:
        return rows(sql, args), None
    except psycopg2.Error as e:
        return None, first_line(e)


@app.teardown_request
def close_connection(exc):
    """Close the request's connection and give its place back."""
    conn = g.pop("conn", None)
    if conn is not None:
        try:
            conn.close()
        finally:
            GATE.release(g.pop("conn_key"))


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


def nul_field():
    """The name of a query or form field holding a NUL byte, or None."""
    for source in (request.args, request.form):
        for name, values in source.lists():
            if "\0" in name or any("\0" in v for v in values):
                return name.replace("\0", "\\0")
    return None


@app.before_request
def load_session():
    """Refuse NUL bytes; find the session (touched unless the request is
    one an open page makes by itself); pages other than login and static
    need one, and every POST must carry the session's anti-forgery
    token."""
    bad = nul_field()
    if bad is not None:
        abort(400, "the field %s holds a NUL byte (\\0), which PostgreSQL"
                   " text cannot hold" % bad)
    g.sid = request.cookies.get(COOKIE)
    g.session = SESSIONS.get(g.sid, touch=request.endpoint not in PASSIVE)
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


def again_url():
    """Where a page that could not be made tries again: itself for a GET,
    else the overview."""
    if request.method == "GET":
        return request.full_path
    return url_for("overview")


@app.errorhandler(Unavailable)
def database_unavailable(e):
    """The database cannot be reached: a page that says so and tries again
    by itself."""
    log.warning("database unavailable: %s", e)
    return render_template("unavailable.html", title="Database unavailable",
                           text="The console cannot reach the database (%s)."
                                % e, again=again_url()), \
        503, {"Retry-After": "5"}


@app.errorhandler(Busy)
def console_busy(e):
    """The console or this session holds all the connections it may."""
    return render_template("unavailable.html", title="Busy", text=str(e),
                           again=again_url()), \
        e.status, {"Retry-After": "5"}


# ---------------------------------------------------------------- login

def local_path(nxt):
    """nxt when it is a path of this console, else "/": no scheme, host,
    backslash, space or control character, nothing a browser could read
    as another site."""
    if (len(nxt) > 2000 or not nxt.startswith("/") or nxt[1:2] in "/\\"
            or any(c == "\\" or not " " < c < "\x7f" for c in nxt)):
        return "/"
    return nxt


def check_login(role, password):
    """(None, session id) when PostgreSQL accepts role and password, else
    (error, HTTP status).  Sizes and the throttle are checked before
    anything is hashed or connected."""
    if not role or not password:
        return "role and password are required", 400
    if len(password.encode("utf-8", "replace")) > MAX_PASSWORD_BYTES:
        return ("the password is too long: at most %d bytes"
                % MAX_PASSWORD_BYTES), 400
    if len(role.encode("utf-8", "replace")) > MAX_ROLE_BYTES:
        return ("the role name is too long: PostgreSQL role names have at"
                " most %d bytes" % MAX_ROLE_BYTES), 400
    addr = request.remote_addr or "-"
    held = THROTTLE.attempt(role, addr)
    if held is not None:
        kind, wait = held
        who = ("for role %s" % role if kind == "role"
               else "from your address (%s)" % addr)
        return ("too many failed logins %s: try again in %d s"
                % (who, wait)), 429
    try:
        with Checked(GATE, ("address", addr), opt("db"), role, password):
            pass
    except Refused:
        return "login refused: wrong role or password", 401
    except Unavailable as e:
        THROTTLE.withdraw(role, addr)
        log.warning("login of %s: database unavailable: %s", role, e)
        return ("the database is unavailable, so the login cannot be"
                " checked: try again in a moment"), 503
    except Busy as e:
        THROTTLE.withdraw(role, addr)
        return str(e), e.status
    THROTTLE.succeeded(role, addr)
    try:
        return None, SESSIONS.create(role, password)
    except TooMany as e:
        return str(e), 503


@app.route("/login", methods=["GET", "POST"])
def login():
    """The login form; on POST, PostgreSQL checks role and password.  The
    form's token is bound to the login cookie of the browser it was sent
    to."""
    error, status = None, 200
    nxt = local_path(request.values.get("next", ""))
    browser = request.cookies.get(LOGIN_COOKIE)
    if request.method == "POST":
        if not LOGIN_FORMS.check(browser, request.form.get("csrf", "")):
            error, status = ("this login form has expired or was not"
                             " loaded by this browser: log in again"), 403
        else:
            error, result = check_login(request.form.get("role", ""),
                                        request.form.get("password", ""))
            if error is None:
                resp = redirect(nxt)
                resp.set_cookie(COOKIE, result, httponly=True,
                                samesite="Strict", secure=request.is_secure)
                resp.delete_cookie(LOGIN_COOKIE)
                return resp
            status = result
    if not browser:
        browser = LOGIN_FORMS.browser()
    resp = app.make_response((render_template(
        "login.html", error=error, next=nxt,
        csrf=LOGIN_FORMS.issue(browser)), status))
    if status == 429 or status == 503:
        resp.headers["Retry-After"] = "5"
    resp.set_cookie(LOGIN_COOKIE, browser, httponly=True, samesite="Strict",
                    secure=request.is_secure, max_age=LoginForms.LIFETIME)
    return resp


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
                           **overview_data(try_rows, opt("chart_hours")))


@app.route("/part/overview")
def overview_part():
    """The live part of the overview, fetched again on each event."""
    return render_template("overview_part.html",
                           **overview_data(try_rows, opt("chart_hours")))


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
    try:
        conn = db()
        del conn.notices[:]
        with conn.cursor() as cur:
            cur.execute(sql, args)
        notes = [n.split(":", 1)[-1].strip() for n in conn.notices]
        if notes:
            flash("notice", "; ".join(notes))
        else:
            flash("ok", done)
    except (Unavailable, Busy) as e:
        flash("error", "nothing was done: %s" % e)
    except psycopg2.Error as e:
        if connection_lost(e):
            flash("error", "the connection to the database broke (%s): see"
                  " the actions below whether it was recorded"
                  % first_line(e))
        else:
            flash("error", first_line(e))
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
    """Server-sent events of one open page (live.py): 'db' when the
    database becomes unavailable or is back, 'alert' for an alert about a
    transaction this role may see, and a 'tick' every two seconds so that
    pages also follow changes that send no alert.  Ends with the session;
    429 past the streams a session or the console may hold."""
    sid, sess = g.sid, g.session
    try:
        st = HUB.open(sid, sess)
    except Full as e:
        return Response(str(e) + "\n", 429, mimetype="text/plain",
                        headers={"Retry-After": "30"})

    def visible(gids):
        """[(gid, status)] of the gids this role may see, as the role."""
        try:
            with Checked(GATE, ("session", sid), opt("db"), sess["role"],
                         sess["password"]) as conn, conn.cursor() as cur:
                cur.execute("SELECT gid::text, status FROM tcc.transactions"
                            " WHERE gid = ANY(%s::uuid[])", (gids,))
                return cur.fetchall()
        except (Refused, Unavailable, Busy, psycopg2.Error):
            return None

    def alive():
        """The stream's session still lives."""
        return SESSIONS.get(sid, touch=False) is sess

    resp = Response(EventStream(HUB, st, alive, visible),
                    mimetype="text/event-stream")
    resp.headers["X-Accel-Buffering"] = "no"
    return resp


@app.template_filter("ts")
def format_ts(v):
    """A timestamp as shown: UTC, to the millisecond."""
    if v is None:
        return ""
    return v.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def main():
    """Read the settings and serve with waitress: a fixed number of
    threads (--threads for requests, one per live stream allowed), so many
    HTTP connections, and request sizes bounded."""
    import waitress
    a = options.parse()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if a.behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.config["OPT"] = a
    server = waitress.create_server(
        app, host=a.host, port=a.port, threads=a.threads + a.max_streams,
        connection_limit=a.http_connections, channel_timeout=60,
        max_request_body_size=MAX_REQUEST_BYTES,
        max_request_header_size=MAX_REQUEST_BYTES,
        clear_untrusted_proxy_headers=False, ident="tcc console")
    if a.pidfile:
        with open(a.pidfile, "w") as fh:
            fh.write("%d\n" % os.getpid())
    log.info("listening on http://%s:%d/ (database: %s)", a.host, a.port,
             a.db)
    server.run()


if __name__ == "__main__":
    main()
