// tcc console: live parts and confirmations.  No other script is loaded.
"use strict";

// Ask before an action is posted.
document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
  }
});

// Fetch the page's live part again on each server-sent event.
document.addEventListener("DOMContentLoaded", function () {
  var live = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (!live || !window.EventSource) {
    return;
  }
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(live.getAttribute("data-part"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        if (r.status === 403 || r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null) { live.innerHTML = html; } })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  // The stream says when the database is unavailable and when it is back;
  // a stream the console refused or ended (its limit, a restart) is
  // opened again after a while, twice as long each time up to a minute.
  var delay = 2000, down = false;
  function listen() {
    var es = new EventSource("/events");
    es.addEventListener("open", function () { delay = 2000; state.textContent = "on"; });
    es.addEventListener("error", function () {
      if (es.readyState !== EventSource.CLOSED) {
        state.textContent = "reconnecting";
        return;
      }
      state.textContent = "off, trying again in " + delay / 1000 + " s";
      refresh();  // a session that ended shows the login page
      setTimeout(listen, delay);
      delay = Math.min(delay * 2, 60000);
    });
    es.addEventListener("db", function (ev) {
      var d = JSON.parse(ev.data);
      if (d.db === "up") {
        state.textContent = "on";
        if (down) { refresh(); }
        down = false;
      } else if (d.db === "down") {
        down = true;
        state.textContent = "database unavailable (" + (d.error || "") + "), trying again";
      }
    });
    es.addEventListener("tick", refresh);
    es.addEventListener("alert", function (ev) {
      var d = JSON.parse(ev.data);
      state.textContent = d.gid ? "on (alert: " + d.gid + " " + d.status + ")" : "on (alert)";
      refresh();
    });
  }
  listen();
});
