"""console/sessions.py - the console's logins, kept in this process's memory.

A session maps a random id (the only thing the browser's cookie holds) to the
role, its password and the session's anti-forgery token; it ends after a
period without an action of the person (a page, a form: not the live
updates an open page fetches by itself), or on logout.  Sessions are
bounded: so many per role (a new login ends that role's oldest) and so many
in all.

The login form, which comes before any session, carries a token bound to
the browser that fetched it: an HMAC of a random cookie that browser got
with the form, so a page elsewhere cannot log a victim's browser in, and
the console keeps nothing per form fetched.  Failed logins are counted per
role and per client address; past a number of them, each further attempt
must wait, twice as long each time.
"""

import hashlib
import hmac
import math
import secrets
import threading
import time


class TooMany(Exception):
    """No room for another session."""


class Sessions:
    """Server-side sessions: id -> role, password, anti-forgery token."""

    def __init__(self, lifetime, per_role, total):
        """lifetime() gives the seconds a session lives without an action;
        per_role() and total() its bounds."""
        self.lifetime = lifetime
        self.per_role = per_role
        self.total = total
        self.lock = threading.Lock()
        self.by_id = {}
        self.swept = 0.0

    def create(self, role, password):
        """Start a session for a role whose password PostgreSQL accepted:
        the role's oldest ends when it has per_role() of them; TooMany when
        the console holds total()."""
        sid = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self.lock:
            self._sweep(now, force=True)
            mine = sorted((s["born"], k) for k, s in self.by_id.items()
                          if s["role"] == role)
            for _, k in mine[:max(len(mine) - self.per_role() + 1, 0)]:
                del self.by_id[k]
            if len(self.by_id) >= self.total():
                raise TooMany("the console holds %d sessions, its limit:"
                              " try again later" % len(self.by_id))
            self.by_id[sid] = {"role": role, "password": password,
                               "csrf": secrets.token_urlsafe(32),
                               "seen": now, "born": now, "flash": []}
        return sid

    def get(self, sid, touch=True):
        """The live session of an id, or None.  touch: this request is an
        action of the person, so the idle time starts again."""
        if not sid:
            return None
        now = time.monotonic()
        with self.lock:
            self._sweep(now)
            s = self.by_id.get(sid)
            if s is not None and now - s["seen"] > self.lifetime():
                del self.by_id[sid]
                s = None
            if s is not None and touch:
                s["seen"] = now
            return s

    def _sweep(self, now, force=False):
        """Drop expired sessions, at most once a second (the lock is
        held)."""
        if not force and now - self.swept < 1.0:
            return
        self.swept = now
        limit = self.lifetime()
        for k in [k for k, s in self.by_id.items() if now - s["seen"] > limit]:
            del self.by_id[k]

    def drop(self, sid):
        """End a session."""
        with self.lock:
            self.by_id.pop(sid, None)

    def count(self):
        """Sessions held now."""
        with self.lock:
            return len(self.by_id)


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
