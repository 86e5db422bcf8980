"""console/destinations.py - the destinations page and its Pause / Resume
actions (docs/api.md#pausing-a-destination).

The page lists tcc.destinations as the logged-in role reads it: every
paused destination and every one with calls waiting or in flight (the
worker reports at most 64 of those), so it costs what it shows.  Pause
(tcc_pause, with an optional note) and Resume (tcc_resume) are POSTs like
Retry and Resolve, run as the role through the application's act(): a role
without EXECUTE gets the database's refusal and nothing is done; a
destination the database refuses (22023) gets its message and hint.
"""

from flask import redirect, render_template, request, url_for

# rows shown at most (the view is small: the worker reports at most 64
# destinations; more than this many pauses would be a mistake to show)
MAX_ROWS = 200
# longest destination and note taken, in characters: refused with a
# message before the database is asked
MAX_DESTINATION = 1000
MAX_NOTE = 1000

QUERY = ("SELECT destination, paused, paused_at, paused_by::text AS paused_by,"
         "       note, calls_due, in_flight, last_http_status, last_error,"
         "       next_attempt_at"
         "  FROM tcc.destinations"
         " ORDER BY paused DESC, destination"
         " LIMIT %d" % (MAX_ROWS + 1))


def destination_field(flash):
    """The form's destination, stripped; None (and a message) when it is
    missing or too long."""
    dest = request.form.get("destination", "").strip()
    if not dest:
        flash("error", "give a destination: scheme://host[:port], for"
                       " example https://pay.example:8443")
        return None
    if len(dest) > MAX_DESTINATION:
        flash("error", "the destination is longer than %d characters:"
                       " nothing was done" % MAX_DESTINATION)
        return None
    return dest


def install(app, try_rows, act, flash):
    """Add the page and its actions to app.  try_rows(sql) reads as the
    logged-in role ((rows, None) or (None, message)); act(sql, args, done,
    back) runs an action as the role, shows its NOTICE or error and
    redirects to back; flash(kind, text) shows a message on the next
    page."""

    def destinations():
        """tcc.destinations as the role reads it, with the forms."""
        found, error = try_rows(QUERY)
        more = found is not None and len(found) > MAX_ROWS
        return render_template("destinations.html",
                               rows=found[:MAX_ROWS] if found else found,
                               error=error, more=more, max_rows=MAX_ROWS,
                               max_note=MAX_NOTE,
                               max_destination=MAX_DESTINATION)

    def pause():
        """The Pause button and form: tcc_pause(destination, note)."""
        back = url_for("destinations")
        dest = destination_field(flash)
        if dest is None:
            return redirect(back)
        note = request.form.get("note", "").strip()
        if len(note) > MAX_NOTE:
            flash("error", "the note is longer than %d characters: nothing"
                           " was done" % MAX_NOTE)
            return redirect(back)
        return act("SELECT tcc_pause(%s, %s)", (dest, note or None),
                   "paused %s: its confirm and cancel calls wait, its tries"
                   " fail at once" % dest, back)

    def resume():
        """The Resume button: tcc_resume(destination)."""
        back = url_for("destinations")
        dest = destination_field(flash)
        if dest is None:
            return redirect(back)
        return act("SELECT tcc_resume(%s)", (dest,),
                   "resumed %s: the calls held are due now" % dest, back)

    app.add_url_rule("/destinations", "destinations", destinations)
    app.add_url_rule("/destinations/pause", "pause", pause, methods=["POST"])
    app.add_url_rule("/destinations/resume", "resume", resume,
                     methods=["POST"])
