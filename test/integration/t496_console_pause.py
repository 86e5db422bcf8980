#!/usr/bin/python3
# Pausing a destination from the operations console (README "The operations
# console", docs/api.md#pausing-a-destination), with the console's plain
# HTTP client (consolelib.Browser).  Each part names what it checks:
#
#   page       the destinations page, linked from the navigation, lists
#              tcc.destinations as the logged-in operator reads it
#   token      a Pause without the session's anti-forgery token is 403
#              and nothing is paused
#   grant      a role without EXECUTE on tcc_pause sees the database's
#              refusal (42501) in place of the list and after its Pause;
#              nothing is paused
#   input      a malformed destination gets the database's 22023 message
#              and hint; an empty one and a note too long are refused
#              before the database is asked; nothing is paused
#   pause      the operator pauses the test participant's destination with
#              a note: tcc.destinations shows it paused, the note and who
#              paused it, and so does the page, with a Resume button; a
#              confirm to it is held (as in t810_pause.py: a confirm at
#              another destination is sent meanwhile, this one is not and
#              counts no attempt)
#   resume     Resume through the console: the held confirm arrives and
#              the transaction is confirmed; a second Resume says (NOTICE)
#              that the destination is not paused

import html
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from consolelib import (Browser, extra_port, output_dir,  # noqa: E402
                        password_roles, start_console)
from coordlib import (branch_urls, calls, drop_roles,  # noqa: E402
                      system_settings, wait_final)
from tcclib import (done_testing, is_, like, ok, q, q1,  # noqa: E402
                    tp_rule, wait_until)

PORT = extra_port(1)
OUT = output_dir("console-pause")
DEST = "http://127.0.0.1:%s" % os.environ["TCC_TP_PORT"]
OPS, APP = ("pause_ops", "pw-ops-496"), ("pause_app", "pw-app-496")
PAUSE_GRANTS = """
GRANT EXECUTE ON FUNCTION tcc_pause(text, text), tcc_resume(text),
    tcc_destination_state() TO {r};
GRANT SELECT ON tcc.destinations TO {r};
"""


def paused():
    """The tcc.destinations row of DEST as a dict, or None, read as the
    superuser."""
    rows = q("SELECT row_to_json(d) FROM (SELECT destination, paused, note,"
             " paused_by::text AS paused_by, paused_at, calls_due"
             " FROM tcc.destinations WHERE destination = %s) d", (DEST,))
    return rows[0][0] if rows else None


def pauses():
    """How many destinations are paused."""
    return q1("SELECT count(*) FROM tcc._pause")


def messages(page):
    """{kind: text} of the messages a page shows (base.html: msg-<kind>)."""
    return dict((k, html.unescape(t)) for k, t in re.findall(
        r'<p class="msg \w+" id="msg-(\w+)">(.*?)</p>', page, re.S))


def act(b, path, form, token=True):
    """POST an action of browser b (with the session's token unless told
    not to); (status of the POST, messages of the page it leads to)."""
    if token:
        form = dict(form, csrf=b.csrf("/destinations"))
    status, headers, _ = b.post(path, form)
    if status != 302:
        return status, {}
    is_(headers.get("Location", "").split("?")[0].rsplit("/", 1)[-1],
        "destinations", "%s leads back to the destinations page" % path)
    return status, messages(b.get("/destinations")[2])


def begin(prefix, host=None):
    """A transaction (as the superuser) with one branch tried under
    prefix; its gid."""
    gid = q1("SELECT tcc_begin('10 min')")
    q("SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + branch_urls(prefix, host))
    return gid


for p in ("/t496/held", "/t496/other"):
    for op in ("try", "confirm", "cancel"):
        tp_rule("%s/%s" % (p, op))

console = None
try:
    with password_roles(dict([OPS, APP])):
        q(PAUSE_GRANTS.format(r=OPS[0]))
        console = start_console(PORT, log_dir=OUT)
        ops, app = Browser(PORT), Browser(PORT)
        is_([ops.login(*OPS)[0], app.login(*APP)[0]], [302, 302],
            "the operator and the application role log in")

        # ---- page
        status, _, page = ops.get("/")
        ok('href="/destinations" id="nav-destinations"' in page,
           "page: the navigation links to the destinations page")
        status, _, page = ops.get("/destinations")
        is_(status, 200, "page: it answers 200")
        ok('id="destinations"' in page and 'id="pause-form"' in page,
           "page: the list and the form to pause a destination")
        ok('id="destinations-error"' not in page,
           "page: the operator may read tcc.destinations")

        # ---- token
        status, _ = act(ops, "/destinations/pause",
                        {"destination": DEST, "note": "forged"}, token=False)
        is_(status, 403, "token: a Pause without the token is refused (403)")
        is_(pauses(), 0, "token: nothing is paused")

        # ---- grant
        page = app.get("/destinations")[2]
        like(html.unescape(page), r'id="destinations-error">ERROR:\s+'
             r'permission denied for (view|function) (tcc_)?destination',
             "grant: the role without the grant sees the refusal in place"
             " of the list")
        status, msgs = act(app, "/destinations/pause", {"destination": DEST})
        like(msgs.get("error", ""),
             r"permission denied for function tcc_pause",
             "grant: its Pause shows the database's refusal (42501)")
        is_(pauses(), 0, "grant: nothing is paused")
        status, msgs = act(app, "/destinations/resume", {"destination": DEST})
        like(msgs.get("error", ""),
             r"permission denied for function tcc_resume",
             "grant: and so does its Resume")

        # ---- input
        status, msgs = act(ops, "/destinations/pause",
                           {"destination": "ftp://127.0.0.1/x", "note": "n"})
        like(msgs.get("error", ""),
             r"destination must be scheme://host\[:port\] \(The scheme is"
             r" http or https",
             "input: a malformed destination gets the 22023 message and"
             " hint")
        status, msgs = act(ops, "/destinations/pause", {"destination": " "})
        like(msgs.get("error", ""), r"give a destination",
             "input: an empty destination is asked for")
        status, msgs = act(ops, "/destinations/pause",
                           {"destination": DEST, "note": "x" * 1001})
        like(msgs.get("error", ""), r"note is longer than 1000 characters",
             "input: a note too long is refused")
        is_(pauses(), 0, "input: nothing is paused")

        # ---- pause
        held = begin("/t496/held")          # tried before the pause
        status, msgs = act(ops, "/destinations/pause",
                           {"destination": DEST,
                            "note": "participant upgrade <t496>"})
        like(msgs.get("ok", ""), r"^paused %s" % re.escape(DEST),
             "pause: the console says it is paused")
        row = paused() or {}
        is_((row.get("paused"), row.get("note"), row.get("paused_by"),
             row.get("paused_at") is not None),
            (True, "participant upgrade <t496>", OPS[0], True),
            "pause: tcc.destinations shows it paused, the note and who")
        with system_settings(max_attempts=1):
            q("SELECT tcc_finish(%s)", (held,))
            other = begin("/t496/other", host="localhost")
            q("SELECT tcc_finish(%s)", (other,))
            is_(wait_final(other, 15), "confirmed",
                "pause: a transaction at another destination is confirmed")
            ok(wait_until(lambda: (paused() or {}).get("calls_due") == 1,
                          10), "pause: tcc.destinations shows one call held")
            is_(calls(held, "confirm"), [],
                "pause: no confirm was sent to the paused destination")
            is_(q("SELECT t.status, b.attempts FROM tcc.transactions t"
                  " JOIN tcc.branches b USING (gid) WHERE gid = %s",
                  (held,)), [("confirming", 0)],
                "pause: it counts no attempt and is not failed")
        page = ops.get("/destinations")[2]
        m = re.search(r'<tr class="paused" data-destination="%s">(.*?)</tr>'
                      % re.escape(DEST), page, re.S)
        cells = m.group(1) if m else ""
        ok(OPS[0] in cells and
           "participant upgrade &lt;t496&gt;" in cells and
           'class="resume"' in cells,
           "pause: the page shows the pause, who, the note (escaped) and a"
           " Resume button")
        status, msgs = act(ops, "/destinations/pause", {"destination": DEST})
        like(msgs.get("notice", ""), r"already paused",
             "pause: pausing it again says it is paused already")

        # ---- resume
        status, msgs = act(ops, "/destinations/resume", {"destination": DEST},
                           token=False)
        is_((status, pauses()), (403, 1),
            "resume: without the token 403, still paused")
        status, msgs = act(ops, "/destinations/resume", {"destination": DEST})
        like(msgs.get("ok", ""), r"^resumed %s" % re.escape(DEST),
             "resume: the console says it is resumed")
        is_(wait_final(held, 15), "confirmed",
            "resume: the held transaction is confirmed")
        is_(len(calls(held, "confirm")), 1, "resume: its confirm arrived")
        is_(pauses(), 0, "resume: nothing is paused")
        status, msgs = act(ops, "/destinations/resume", {"destination": DEST})
        like(msgs.get("notice", ""), r"is not paused",
             "resume: a second Resume says it is not paused")
finally:
    if console is not None:
        console.stop()
    if q1("SELECT count(*) FROM tcc._pause WHERE destination = %s", (DEST,)):
        q("SELECT tcc_resume(%s)", (DEST,))
    drop_roles([OPS[0], APP[0]])

done_testing()
