"""console/sessions.py - the console's sessions, kept in this process's memory.

A session maps a random id (the only thing the browser's cookie holds) to the
role, its password and the session's anti-forgery token; it ends after a
period without an action of the person (a page, a form: not the live
updates an open page fetches by itself), or on logout.  Sessions are
bounded: so many per role (a new login ends that role's oldest) and so many
in all.
"""

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
