"""console/login.py - logging in, at no cost to a stranger.

The login form carries a token bound to the browser that fetched it: an
HMAC of a random cookie that browser got with the form, so a page elsewhere
cannot log a victim's browser in, and the console keeps nothing per form
fetched.  A login is checked by PostgreSQL (the console connects as the
role), but only after what costs nothing: the sizes of the role and the
password (libpq's password hashing takes time in proportion to the
password's length), and the count of failed logins per role and per client
address; past a number of them each further attempt must wait, twice as
long each time.  A database that cannot be reached is said to be so, not
taken for a wrong password.
"""

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time

from database import Busy, Checked, Refused, Unavailable
from sessions import TooMany

MAX_PASSWORD_BYTES = 1024
MAX_ROLE_BYTES = 63         # PostgreSQL's NAMEDATALEN - 1

log = logging.getLogger("tcc.console")


def local_path(nxt):
    """nxt when it is a path of this console, else "/": no scheme, host,
    backslash, space or control character, nothing a browser could read
    as another site."""
    if (len(nxt) > 2000 or not nxt.startswith("/") or nxt[1:2] in "/\\"
            or any(c == "\\" or not " " < c < "\x7f" for c in nxt)):
        return "/"
    return nxt


class LoginForms:
    """Anti-forgery tokens of the login form, bound to a browser cookie and
    valid for an hour; nothing is stored per token."""

    LIFETIME = 3600

    def __init__(self):
        self.key = secrets.token_bytes(32)

    def browser(self):
        """A new value for the login cookie."""
        return secrets.token_urlsafe(24)

    def _mac(self, browser, issued):
        """The HMAC of a browser cookie and the time the token was made."""
        msg = ("%s|%d" % (browser, issued)).encode()
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()

    def issue(self, browser):
        """The token of a form sent to the browser with that cookie."""
        issued = int(time.time())
        return "%d.%s" % (issued, self._mac(browser, issued))

    def check(self, browser, token):
        """True when token was issued to this browser within the hour."""
        if not browser or not token or "." not in token:
            return False
        issued, mac = token.split(".", 1)
        if not issued.isdigit():
            return False
        age = time.time() - int(issued)
        return (0 <= age <= self.LIFETIME and
                hmac.compare_digest(mac, self._mac(browser, int(issued))))


class LoginThrottle:
    """Failed logins per role and per client address.  The first free()
    failures of a key cost nothing; after them each attempt waits 1 s, then
    2, 4, ... up to MAX_DELAY after the previous one.  An attempt counts as
    failed from its start (so that a burst sent at once is held too) until
    it succeeds; a key is forgotten FORGET seconds after its last
    failure, and at most LIMIT keys are kept (the stalest go first)."""

    MAX_DELAY = 300.0
    FORGET = 900.0
    LIMIT = 10000

    def __init__(self, free_role, free_address):
        """free_role() and free_address() give the free failures."""
        self.free = {"role": free_role, "address": free_address}
        self.lock = threading.Lock()
        self.keys = {}       # (kind, value) -> [failures, last failure]

    def _wait(self, key, now):
        """Seconds key must still wait (the lock is held)."""
        entry = self.keys.get(key)
        if entry is None:
            return 0.0
        n, last = entry
        if now - last > self.FORGET:
            del self.keys[key]
            return 0.0
        over = n - self.free[key[0]]()
        if over < 0:
            return 0.0
        return max(last + min(2.0 ** over, self.MAX_DELAY) - now, 0.0)

    def attempt(self, role, address):
        """Start an attempt: None when it may go on (it counts as failed
        until succeeded or withdrawn), else (kind, seconds to wait)."""
        now = time.monotonic()
        keys = (("role", role), ("address", address))
        with self.lock:
            for key in keys:
                w = self._wait(key, now)
                if w > 0:
                    return key[0], int(math.ceil(w))
            for key in keys:
                entry = self.keys.setdefault(key, [0, now])
                entry[0] += 1
                entry[1] = now
            if len(self.keys) > self.LIMIT:
                stale = sorted(self.keys, key=lambda k: self.keys[k][1])
                for k in stale[:len(self.keys) - self.LIMIT]:
                    del self.keys[k]
        return None

    def succeeded(self, role, address):
        """The attempt logged in: the role starts afresh, the address's
        count loses this attempt."""
        with self.lock:
            self.keys.pop(("role", role), None)
            self._undo(("address", address))

    def withdraw(self, role, address):
        """The attempt could not be judged (the database was unavailable):
        it does not count."""
        with self.lock:
            self._undo(("role", role))
            self._undo(("address", address))

    def _undo(self, key):
        """One failure less for key (the lock is held)."""
        entry = self.keys.get(key)
        if entry is not None:
            entry[0] -= 1
            if entry[0] <= 0:
                del self.keys[key]


class Logins:
    """Checks logins and starts their sessions."""

    def __init__(self, sessions, gate, dsn, free_role, free_address):
        """dsn() gives the database's connection string; free_role() and
        free_address() the failures allowed before the waits begin."""
        self.sessions = sessions
        self.gate = gate
        self.dsn = dsn
        self.throttle = LoginThrottle(free_role, free_address)

    def check(self, role, password, addr):
        """(None, session id) when PostgreSQL accepts role and password
        from client address addr, else (error, HTTP status).  Sizes and
        the throttle come before anything is hashed or connected."""
        if not role or not password:
            return "role and password are required", 400
        if len(password.encode("utf-8", "replace")) > MAX_PASSWORD_BYTES:
            return ("the password is too long: at most %d bytes"
                    % MAX_PASSWORD_BYTES), 400
        if len(role.encode("utf-8", "replace")) > MAX_ROLE_BYTES:
            return ("the role name is too long: PostgreSQL role names have"
                    " at most %d bytes" % MAX_ROLE_BYTES), 400
        held = self.throttle.attempt(role, addr)
        if held is not None:
            kind, wait = held
            who = ("for role %s" % role if kind == "role"
                   else "from your address (%s)" % addr)
            return ("too many failed logins %s: try again in %d s"
                    % (who, wait)), 429
        try:
            with Checked(self.gate, ("address", addr), self.dsn(), role,
                         password):
                pass
        except Refused:
            return "login refused: wrong role or password", 401
        except Unavailable as e:
            self.throttle.withdraw(role, addr)
            log.warning("login of %s: database unavailable: %s", role, e)
            return ("the database is unavailable, so the login cannot be"
                    " checked: try again in a moment"), 503
        except Busy as e:
            self.throttle.withdraw(role, addr)
            return str(e), e.status
        self.throttle.succeeded(role, addr)
        try:
            return None, self.sessions.create(role, password)
        except TooMany as e:
            return str(e), 503
