"""console/database.py - the console's connections to the database.

Every connection is made as the logged-in role (PostgreSQL checks the
password) and is counted by one Gate: at most a set number at once for the
whole console, and fewer for one session or one client address, so that
no one person, however many pages or requests they send, can take the
database's connection slots away from the applications.  A failed connect
is told apart: Refused (wrong role or password) or Unavailable (the database
cannot be reached, is starting or stopping, or has no free slot).
"""

import re
import threading
import time

import psycopg2

# what PostgreSQL answers when the role or its password is wrong; it says
# the same for a role that does not exist, so as not to tell which it is
REFUSED = re.compile(r"authentication failed|no pg_hba\.conf entry"
                     r"|pg_hba\.conf rejects|role \".*\" does not exist"
                     r"|is not permitted to log in|no password supplied")

# SQLSTATEs of a connection that went away: connection exception (class
# 08), administrator / crash shutdown, cannot connect now
GONE = ("57P01", "57P02", "57P03")


class Refused(Exception):
    """PostgreSQL refused the role or its password."""


class Unavailable(Exception):
    """The database cannot be reached (the text says why)."""


class Busy(Exception):
    """The console holds as many connections as it may; status is the HTTP
    status to answer (429: this session's share, 503: the console's)."""

    def __init__(self, text, status):
        super().__init__(text)
        self.status = status


def first_line(e):
    """The first line of an error's text."""
    text = (getattr(e, "pgerror", None) or str(e) or type(e).__name__).strip()
    return text.splitlines()[0] if text else type(e).__name__


def connection_lost(e):
    """True when a psycopg2 error means the connection is gone (the server
    stopped, restarted or was cut off), not that the statement failed."""
    if isinstance(e, psycopg2.InterfaceError):
        return True
    if not isinstance(e, psycopg2.OperationalError):
        return False
    code = getattr(e, "pgcode", None)
    return code is None or code.startswith("08") or code in GONE


def connect(dsn, role, password, timeout=10):
    """A connection as role, autocommit, UTC; Refused or Unavailable when
    PostgreSQL does not give one."""
    try:
        conn = psycopg2.connect(dsn, user=role, password=password,
                                connect_timeout=timeout,
                                application_name="tcc console",
                                options="-c TimeZone=UTC"
                                        " -c statement_timeout=30s")
    except psycopg2.OperationalError as e:
        text = first_line(e)
        if REFUSED.search(str(e)):
            raise Refused(text) from e
        raise Unavailable(text) from e
    conn.autocommit = True
    return conn


class Gate:
    """Counts the connections the console holds: at most total() at once,
    and at most per_key() for one key (a session, or a client address for
    logins).  Past a key's share the answer is at once Busy (429); past
    the total a request waits up to wait seconds for a free one, then is
    Busy (503)."""

    def __init__(self, total, per_key, wait=5.0):
        """total() and per_key() give the current limits."""
        self.total = total
        self.per_key = per_key
        self.wait = wait
        self.cond = threading.Condition()
        self.used = 0
        self.by_key = {}

    def acquire(self, key):
        """Take one connection's place for key, or raise Busy."""
        with self.cond:
            mine = self.by_key.get(key, 0)
            if mine >= self.per_key():
                raise Busy("too many requests at once from this session or"
                           " address (at most %d at a time): wait for the"
                           " others to finish" % self.per_key(), 429)
            # waiting counts against the key's share, so that one key
            # cannot queue up without bound either
            self.by_key[key] = mine + 1
            deadline = time.monotonic() + self.wait
            while self.used >= self.total():
                left = deadline - time.monotonic()
                if left <= 0:
                    self._drop(key)
                    raise Busy("the console is busy: all of its %d database"
                               " connections are in use; try again in a"
                               " moment" % self.total(), 503)
                self.cond.wait(left)
            self.used += 1

    def release(self, key):
        """Give back a place acquire took."""
        with self.cond:
            self.used -= 1
            self._drop(key)
            self.cond.notify()

    def _drop(self, key):
        """One place less for key (the lock is held)."""
        n = self.by_key.get(key, 0) - 1
        if n > 0:
            self.by_key[key] = n
        else:
            self.by_key.pop(key, None)


class Checked:
    """A connection as role through the gate: `with Checked(...) as conn`.
    Connecting errors come out as Refused, Unavailable or Busy."""

    def __init__(self, gate, key, dsn, role, password):
        self.gate, self.key = gate, key
        self.args = (dsn, role, password)
        self.conn = None

    def __enter__(self):
        self.gate.acquire(self.key)
        try:
            self.conn = connect(*self.args)
        except BaseException:
            self.gate.release(self.key)
            raise
        return self.conn

    def __exit__(self, *exc):
        try:
            self.conn.close()
        finally:
            self.gate.release(self.key)
        return False
