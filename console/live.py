"""console/live.py - live updates of open pages, on one database connection.

Every open page holds a server-sent event stream.  The streams share one
listening connection (LISTEN tcc_alert), made with the login of one of the
sessions that have a stream open and closed when none has: so live pages
cost the database one connection however many are open.  An alert's
payload is never passed on as it came (any role may NOTIFY tcc_alert): the
gid is parsed out of it, and each stream asks the database, as its own
role, which of the gids it was sent it may see and in what status, and
passes on only those.  A stream also says when the database becomes
unavailable and when it is back, and ticks every couple of seconds so that
pages follow the changes that send no alert.  Streams are bounded: so many
per session and so many in all.
"""

import json
import logging
import select
import threading
import time
import uuid

import psycopg2

from database import Refused, Unavailable, first_line

log = logging.getLogger("tcc.console")
# seconds between two looks of one stream at the alerts it was sent
CHECK_GAP = 1.0


class Full(Exception):
    """No room for another stream."""


class Stream:
    """One open page's stream: what it still has to pass on."""

    MAX_GIDS = 50

    def __init__(self, sid, session):
        self.sid = sid
        self.session = session
        self.gids = []
        self.overflow = False
        self.changed = threading.Event()

    def add(self, gid):
        """An alert for gid (the hub's lock is held)."""
        if gid in self.gids:
            return
        if len(self.gids) >= self.MAX_GIDS:
            self.overflow = True
        else:
            self.gids.append(gid)
        self.changed.set()


def alert_gid(payload):
    """The gid of a tcc_alert payload, or None when it is not one."""
    try:
        return str(uuid.UUID(str(json.loads(payload)["gid"])))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


class Hub:
    """The open streams and the one listening connection they share."""

    def __init__(self, connect, total, per_session, tick=2.0):
        """connect(role, password) gives a connection (or raises Refused or
        Unavailable); total() and per_session() bound the streams."""
        self.connect = connect
        self.total = total
        self.per_session = per_session
        self.tick = tick
        self.lock = threading.Lock()
        self.streams = []
        self.state = {"db": "connecting"}
        self.wake = threading.Event()
        self.thread = None

    def open(self, sid, session):
        """A new stream for a session, or Full."""
        with self.lock:
            if len(self.streams) >= self.total():
                raise Full("the console already serves %d live pages, its"
                           " limit" % len(self.streams))
            mine = sum(1 for s in self.streams if s.sid == sid)
            if mine >= self.per_session():
                raise Full("this session already has %d live pages open,"
                           " its limit: close some" % mine)
            st = Stream(sid, session)
            self.streams.append(st)
            if self.thread is None:
                self.thread = threading.Thread(target=self._listen,
                                               name="tcc-listen", daemon=True)
                self.thread.start()
        self.wake.set()
        return st

    def close(self, st):
        """A stream ended."""
        with self.lock:
            if st in self.streams:
                self.streams.remove(st)
        self.wake.set()

    def _set_state(self, state):
        """The listening connection's state, told to every stream."""
        with self.lock:
            if state == self.state:
                return
            self.state = state
            for st in self.streams:
                st.changed.set()

    def _logins(self):
        """(sid, session) of the streams' sessions, the newest first."""
        with self.lock:
            seen, out = set(), []
            for st in reversed(self.streams):
                if st.sid not in seen:
                    seen.add(st.sid)
                    out.append((st.sid, st.session))
            return out

    def _listen(self):
        """The listening thread: keep one LISTEN connection while a stream
        is open, with the login of a session that has one."""
        conn, owner, delay = None, None, 1.0
        while True:
            logins = self._logins()
            if conn is not None and owner not in [s for s, _ in logins]:
                # the session whose login it uses has no stream any more:
                # until another listens, alerts are not heard
                conn.close()
                conn = None
                self._set_state({"db": "connecting"})
            if not logins:
                self.wake.wait(60)
                self.wake.clear()
                continue
            if conn is None:
                conn, owner, error = self._connect(logins)
                if conn is None:
                    self._set_state({"db": "down", "error": error})
                    self.wake.wait(delay)
                    self.wake.clear()
                    delay = min(delay * 2, 10.0)
                    continue
                delay = 1.0
                self._set_state({"db": "up"})
            try:
                if select.select([conn], [], [], 1.0)[0]:
                    conn.poll()
                    self._deliver(conn)
            except (psycopg2.Error, OSError, ValueError) as e:
                log.warning("live updates: the listening connection"
                            " broke: %s", first_line(e))
                conn.close()
                conn = None
                self._set_state({"db": "down", "error": first_line(e)})

    def _connect(self, logins):
        """(connection, its session id, None) listening on tcc_alert, made
        with the first login that works, or (None, None, why)."""
        error = "no login could listen"
        for sid, sess in logins:
            try:
                conn = self.connect(sess["role"], sess["password"])
            except Refused as e:
                error = str(e)
                continue
            except Unavailable as e:
                return None, None, str(e)
            try:
                with conn.cursor() as cur:
                    cur.execute("LISTEN tcc_alert")
                return conn, sid, None
            except psycopg2.Error as e:
                conn.close()
                return None, None, first_line(e)
        return None, None, error

    def _deliver(self, conn):
        """Hand the gids of the alerts received to every stream."""
        gids = []
        while conn.notifies:
            gid = alert_gid(conn.notifies.pop(0).payload)
            if gid is not None:
                gids.append(gid)
        if gids:
            with self.lock:
                for st in self.streams:
                    for gid in gids:
                        st.add(gid)


def events(hub, st, alive, visible):
    """The server-sent events of one stream, until alive() is false or the
    client goes away: 'db' when the database's state changes, 'alert'
    for each alert about a transaction the role may see (visible(gids)
    gives [(gid, status)] as the role, or None when it cannot tell), and
    'tick' after hub.tick seconds without either (or when alerts came that
    could not all be told).  Alerts about transactions the role may not
    see are not told at all."""
    shown, quiet = None, False
    try:
        yield "retry: 2000\n\n"
        while alive():
            with hub.lock:
                state = hub.state
                gids, overflow = st.gids, st.overflow
                st.gids, st.overflow = [], False
                st.changed.clear()
            if state != shown:
                shown = state
                yield "event: db\ndata: %s\n\n" % json.dumps(state)
            seen = visible(gids) if gids else []
            for gid, status in seen or []:
                yield "event: alert\ndata: %s\n\n" % json.dumps(
                    {"gid": gid, "status": status})
            if overflow or seen is None or (quiet and not gids):
                yield "event: tick\ndata: {}\n\n"
            if gids:
                # at most one look a second, however many alerts are sent
                time.sleep(CHECK_GAP)
            quiet = not st.changed.wait(hub.tick)
    finally:
        hub.close(st)


class EventStream:
    """The response body of a stream: its events, and on close (the client
    went away, even before the first event) the stream is given back."""

    def __init__(self, hub, st, alive, visible):
        self.hub, self.st = hub, st
        self.gen = events(hub, st, alive, visible)

    def __iter__(self):
        return self.gen

    def close(self):
        """Stop the events and free the stream's place."""
        try:
            self.gen.close()
        finally:
            self.hub.close(self.st)
