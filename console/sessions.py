"""console/sessions.py - the console's logins, kept in this process's memory.

A session maps a random id (the only thing the browser's cookie holds) to the
role, its password and the session's anti-forgery token; it ends after a
period without requests, or on logout.  The login form, which comes before
any session, gets one-time anti-forgery tokens of its own.
"""

import secrets
import threading
import time


class Sessions:
    """Server-side sessions: id -> role, password, anti-forgery token."""

    def __init__(self, lifetime):
        """lifetime() gives the seconds a session lives without a request."""
        self.lifetime = lifetime
        self.lock = threading.Lock()
        self.by_id = {}

    def create(self, role, password):
        """Start a session for a role whose password PostgreSQL accepted."""
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.by_id[sid] = {"role": role, "password": password,
                               "csrf": secrets.token_urlsafe(32),
                               "seen": time.monotonic(), "flash": []}
        return sid

    def get(self, sid, touch=True):
        """The live session of an id, or None (expired ones are dropped)."""
        if not sid:
            return None
        now = time.monotonic()
        limit = self.lifetime()
        with self.lock:
            for k in [k for k, s in self.by_id.items()
                      if now - s["seen"] > limit]:
                del self.by_id[k]
            s = self.by_id.get(sid)
            if s is not None and touch:
                s["seen"] = now
            return s

    def drop(self, sid):
        """End a session."""
        with self.lock:
            self.by_id.pop(sid, None)


class LoginTokens:
    """One-time anti-forgery tokens of the login form, kept for an hour."""

    def __init__(self):
        self.lock = threading.Lock()
        self.issued = {}

    def issue(self):
        """A new token for one login form."""
        tok = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self.lock:
            for k in [k for k, t in self.issued.items() if now - t > 3600]:
                del self.issued[k]
            self.issued[tok] = now
        return tok

    def take(self, tok):
        """True once for a token that was issued, False otherwise."""
        with self.lock:
            return self.issued.pop(tok, None) is not None
