/**
 * The script of a live page, inlined (no file to fetch, nothing from a CDN). It follows the run's
 * Server-Sent Events: a step event changes that step's state in the page at once, and any event
 * has the page fetch itself again (at most about once a second, and every few seconds anyway) and
 * swap its `<main>` for the new one, timeline included, without reloading. Between events it counts the elapsed time and the
 * time left to each objective down, from the run's seconds the server gave with the page.
 *
 * Plain ES2017 in a string; it only ever writes text (`textContent`) or HTML the server rendered
 * and escaped.
 *
 * @module
 */

/** The live page's script. */
export const LIVE_SCRIPT = `
(function () {
  "use strict";
  var cfgOf = function (doc) {
    var el = doc.getElementById("thaw-live");
    return el ? JSON.parse(el.textContent) : {};
  };
  var cfg = cfgOf(document);
  var conn = document.getElementById("conn");
  var say = function (text) { if (conn) conn.textContent = text; };
  var base = cfg.now_s, loaded = performance.now(), ended = !!cfg.ended;
  var fmt = function (s) {
    if (s < 10) return Number(s.toFixed(s < 1 ? 3 : 1)) + "s"; // as the server writes them
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (h > 0) return h + "h" + pad(m) + "m";
    if (m > 0) return m + "m" + pad(x) + "s";
    return x + "s";
  };
  var tick = function () {
    if (ended || typeof base !== "number") return;
    var t = base + (performance.now() - loaded) / 1000;
    document.querySelectorAll("[data-elapsed]").forEach(function (el) { el.textContent = fmt(t); });
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var left = Number(el.getAttribute("data-due")) - t;
      el.textContent = left >= 0 ? fmt(left) + " left" : "late by " + fmt(-left);
      el.classList.toggle("late", left < 0);
    });
  };
  var busy = false, again = false, timer = null, last = 0;
  var refresh = function () {
    if (busy) { again = true; return; }
    busy = true;
    last = performance.now();
    fetch(location.href, { cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error(String(r.status))); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.querySelector("main"), now = document.querySelector("main");
        if (next && now) now.replaceWith(document.adoptNode(next));
        var c = cfgOf(doc);
        if (typeof c.now_s === "number") { base = c.now_s; loaded = performance.now(); }
        if (c.ended) ended = true;
        document.body.setAttribute("data-refreshed", String(Number(document.body.getAttribute("data-refreshed") || 0) + 1));
        tick();
      })
      .catch(function () {
        say(ended ? "run ended" : "no answer from thaw; showing the last state it sent");
      })
      .then(function () {
        busy = false;
        if (again) { again = false; soon(); }
      });
  };
  var soon = function () {
    if (timer !== null) return;
    var wait = Math.max(150, 1000 - (performance.now() - last));
    timer = setTimeout(function () { timer = null; refresh(); }, wait);
  };
  var setStep = function (d) {
    document.querySelectorAll("tr[data-step]").forEach(function (row) {
      if (row.getAttribute("data-step") !== d.step) return;
      row.setAttribute("data-state", d.state);
      var cell = row.querySelector(".state .badge");
      if (cell) { cell.textContent = d.state; cell.className = "badge " + d.state; }
      var detail = row.querySelector(".detail");
      if (detail) detail.textContent = d.detail || "";
      var start = row.querySelector(".start"), end = row.querySelector(".end");
      if (d.state === "running" && start && start.textContent === "-") start.textContent = fmt(d.at);
      var over = d.state === "done" || d.state === "failed" || d.state === "cancelled";
      if (over && end && start && start.textContent !== "-") end.textContent = fmt(d.at);
    });
  };
  if (cfg.refreshMs) setInterval(refresh, cfg.refreshMs);
  if (cfg.events && !ended) {
    var es = new EventSource(cfg.events);
    es.onopen = function () { say("live"); };
    es.onerror = function () {
      if (!ended) say("reconnecting… (a --listen server stops with its run)");
    };
    es.addEventListener("step", function (e) { setStep(JSON.parse(e.data)); soon(); });
    ["progress", "milestone", "state", "sl"].forEach(function (name) {
      es.addEventListener(name, soon);
    });
    // Bars of running steps grow, and the engine saves its report once a second: redraw now and
    // then even when no event comes (a step waiting for a person sends none).
    setInterval(function () { if (!ended) soon(); }, 2500);
    es.addEventListener("end", function () { ended = true; es.close(); say("run ended"); refresh(); });
  } else if (cfg.events) {
    say("run ended");
  }
  setInterval(tick, 1000);
  tick();
})();
`;
