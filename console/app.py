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
transaction list (filters, keyset paging), one transaction (branches,
every call, actions, Retry and Resolve) and the destinations (Pause and
Resume: destinations.py); open pages update themselves
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
import destinations
from database import (Busy, Checked, Gate, Refused, Unavailable, connect,
                      connection_lost, first_line)
from live import EventStream, Full, Hub
from login import LoginForms, Logins, local_path
from overview import STATUSES, overview_data
from transactions import list_query, transaction_data
from sessions import Sessions

PAGE_SIZE = 50
COOKIE = "tcc_console"
LOGIN_COOKIE = "tcc_login"
# a request's body is refused past this, before it is read
MAX_REQUEST_BYTES = 64 * 1024
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
GATE = Gate(lambda: opt("db_connections"),
            lambda: opt("db_connections_per_session"))
LOGIN_FORMS = LoginForms()
LOGINS = Logins(SESSIONS, GATE, lambda: opt("db"),
                lambda: opt("login_failures_per_role"),
                lambda: opt("login_failures_per_address"))
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
            error, result = LOGINS.check(request.form.get("role", ""),
                                         request.form.get("password", ""),
                                         request.remote_addr or "-")
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

@app.route("/transactions")
def transactions():
    """Transactions, newest first, filtered, in pages of PAGE_SIZE (keyset
    paging: transactions.py)."""
    f, sql, args = list_query(request.args, PAGE_SIZE)
    after = request.args.get("after", "")
    try:
        found = rows(sql, args)
        error = None
    except psycopg2.Error as e:
        found, error = [], first_line(e)
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

def valid_gid(gid):
    """The gid as text, or 404 when it is no uuid."""
    try:
        return str(uuid.UUID(gid))
    except ValueError:
        abort(404)


@app.route("/tx/<gid>")
def transaction(gid):
    """One transaction."""
    return render_template("transaction.html", **transaction_data(rows, try_rows, valid_gid(gid)))


@app.route("/part/tx/<gid>")
def transaction_part(gid):
    """The live part of one transaction's page."""
    return render_template("transaction_part.html",
                           **transaction_data(rows, try_rows, valid_gid(gid)))


def act(sql, args, done, back):
    """Run an action (tcc_retry, tcc_resolve, tcc_pause, tcc_resume) as the
    logged-in role; show its NOTICE (nothing was done) or its error (with
    its hint), then go back."""
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
                  " below whether it was recorded" % first_line(e))
        else:
            hint = e.diag.message_hint if e.diag else None
            flash("error", first_line(e) + (" (%s)" % hint if hint else ""))
    return redirect(back)


@app.route("/tx/<gid>/retry", methods=["POST"])
def retry(gid):
    """The Retry button: tcc_retry(gid)."""
    gid = valid_gid(gid)
    return act("SELECT tcc_retry(%s)", (gid,),
               "retry recorded: the calls are due now",
               url_for("transaction", gid=gid))


@app.route("/tx/<gid>/resolve", methods=["POST"])
def resolve(gid):
    """The Resolve button: tcc_resolve(gid, note)."""
    gid = valid_gid(gid)
    note = request.form.get("note", "").strip()
    if not note:
        flash("error", "resolve needs a note: say how it was settled")
        return redirect(url_for("transaction", gid=gid))
    return act("SELECT tcc_resolve(%s, %s)", (gid, note),
               "resolved: no more calls will be made",
               url_for("transaction", gid=gid))


destinations.install(app, try_rows, act, flash)


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
