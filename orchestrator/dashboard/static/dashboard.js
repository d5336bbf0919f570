// swarm dashboard: live updates without a framework. The server sends only event names over SSE
// ("board", "task", "tail", "refresh"); each element with data-fragment and data-on (the event names it
// follows) fetches its HTML fragment again on those events and swaps it in.
// The fragments are rendered and escaped by the server; nothing here builds markup from data.
(function () {
  "use strict";

  function swapper(target) {
    let busy = false;
    let again = false;
    return function swap() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(target.dataset.fragment, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
        .then(function (html) {
          const open = Array.from(target.querySelectorAll("details[open][id]")).map(function (d) { return d.id; });
          const log = target.querySelector("pre.log");
          const atEnd = log ? log.scrollTop + log.clientHeight >= log.scrollHeight - 4 : false;
          target.innerHTML = html;
          open.forEach(function (id) { const d = document.getElementById(id); if (d) { d.open = true; } });
          const fresh = target.querySelector("pre.log");
          if (fresh && atEnd) { fresh.scrollTop = fresh.scrollHeight; }
          target.dataset.swaps = String(Number(target.dataset.swaps || "0") + 1);
        })
        .catch(function () { /* the next event tries again */ })
        .finally(function () { busy = false; if (again) { again = false; swap(); } });
    };
  }

  function start() {
    const url = document.body.dataset.events;
    if (!url || !window.EventSource) { return; }
    const source = new EventSource(url);
    document.querySelectorAll("[data-fragment][data-on]").forEach(function (target) {
      const swap = swapper(target);
      target.dataset.on.split(" ").forEach(function (name) { source.addEventListener(name, swap); });
    });
    source.addEventListener("open", function () { document.body.dataset.live = "on"; });
    source.addEventListener("error", function () { document.body.dataset.live = "off"; });
    document.querySelectorAll("pre.log").forEach(function (log) { log.scrollTop = log.scrollHeight; });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
