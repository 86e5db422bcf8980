"""console/options.py - the console's settings: command line and file.

Every setting is a command-line option; --config FILE reads the same
settings from an INI file's [console] section (the packaged service reads
/etc/tcc-console/console.conf), one "name = value" per option, without the
leading dashes.  The command line wins over the file.
"""

import argparse
import configparser
import sys

# (option, type, default, help); type None: a flag
OPTIONS = [
    ("db", str, None,
     "libpq connection string of the coordinator database, without user"
     " and password (those come from the login)"),
    ("host", str, "127.0.0.1", "address to listen on"),
    ("port", int, 8080, "port to listen on"),
    ("session-minutes", float, 30,
     "a session ends after this long without an action of the person"),
    ("chart-hours", int, 3, "hours the overview's charts show"),
    ("threads", int, 8,
     "requests served at once, besides the live streams"),
    ("http-connections", int, 200,
     "HTTP connections held open at once; more wait to be accepted"),
    ("max-streams", int, 32, "live pages open at once, in all"),
    ("max-streams-per-session", int, 4, "live pages open at once per session"),
    ("db-connections", int, 8,
     "database connections held at once for pages, actions and logins"
     " (the live pages share one more)"),
    ("db-connections-per-session", int, 4,
     "of those, at most this many for one session (or, for logins, one"
     " client address)"),
    ("sessions-per-role", int, 16,
     "sessions of one role; a new login ends the role's oldest"),
    ("max-sessions", int, 1000, "sessions in all; more logins are refused"),
    ("login-failures-per-role", int, 5,
     "failed logins of one role before each further attempt must wait"
     " (1 s, then twice as long each time, up to 5 minutes)"),
    ("login-failures-per-address", int, 20,
     "the same for one client address"),
    ("pidfile", str, None, "written once the console listens"),
    ("behind-proxy", None, False,
     "trust X-Forwarded-For, -Proto and -Host from one proxy in front (a"
     " TLS proxy: the cookie is then Secure)"),
]


def parser():
    """The command line's parser."""
    ap = argparse.ArgumentParser(description="tcc operations console")
    ap.add_argument("--config", metavar="FILE",
                    help="read settings from this file's [console] section")
    for name, typ, default, text in OPTIONS:
        if typ is None:
            ap.add_argument("--" + name, action="store_true", help=text)
        else:
            ap.add_argument("--" + name, type=typ, default=default,
                            help=text + (" (default %s)" % default
                                         if default is not None else ""))
    return ap


def from_file(path):
    """The settings of a file as command-line arguments; exits with a
    message naming the file when it cannot be read or has a setting the
    console does not know."""
    cp = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            cp.read_file(fh)
    except (OSError, configparser.Error, UnicodeDecodeError) as e:
        sys.exit("tcc console: cannot read %s: %s" % (path, e))
    if not cp.has_section("console"):
        sys.exit("tcc console: %s has no [console] section" % path)
    known = dict((name, typ) for name, typ, _, _ in OPTIONS)
    argv = []
    for name, value in cp.items("console"):
        if name not in known:
            sys.exit("tcc console: %s: unknown setting %r (known: %s)"
                     % (path, name, ", ".join(sorted(known))))
        if known[name] is None:
            try:
                if cp.getboolean("console", name):
                    argv.append("--" + name)
            except ValueError:
                sys.exit("tcc console: %s: %s must be yes or no"
                         % (path, name))
        else:
            argv.append("--%s=%s" % (name, value))
    return argv


def defaults():
    """The settings before any are given (db empty)."""
    return parser().parse_args([])


def parse(argv=None):
    """The settings: the file's, then the command line's."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser()
    first = ap.parse_args(argv)
    if first.config:
        argv = from_file(first.config) + argv
    a = ap.parse_args(argv)
    if not a.db:
        ap.error("--db is required (or db = ... in the --config file)")
    for name, typ, _, _ in OPTIONS:
        value = getattr(a, name.replace("-", "_"))
        if typ in (int, float) and value <= 0 and name != "port":
            ap.error("--%s must be above 0" % name)
    return a
