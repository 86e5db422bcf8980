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
  var es = new EventSource("/events");
  es.addEventListener("open", function () { state.textContent = "on"; });
  es.addEventListener("error", function () { state.textContent = "reconnecting"; });
  es.addEventListener("tick", refresh);
  es.addEventListener("alert", function (ev) {
    state.textContent = "on (alert: " + ev.data + ")";
    refresh();
  });
});
