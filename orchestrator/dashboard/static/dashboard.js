// swarm dashboard: live updates without a framework. The server sends only event names over SSE
// ("board", "task", "tail", "refresh"); on each, the matching HTML fragment is fetched and swapped in.
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
    const live = document.getElementById("live");
    if (!live || !window.EventSource) { return; }
    const swapLive = swapper(live);
    const tail = document.getElementById("tail");
    const swapTail = tail ? swapper(tail) : null;
    const source = new EventSource(live.dataset.events);
    ["board", "task", "refresh"].forEach(function (name) { source.addEventListener(name, swapLive); });
    if (swapTail) { source.addEventListener("tail", swapTail); source.addEventListener("task", swapTail); }
    source.addEventListener("open", function () { document.body.dataset.live = "on"; });
    source.addEventListener("error", function () { document.body.dataset.live = "off"; });
    const log = tail && tail.querySelector("pre.log");
    if (log) { log.scrollTop = log.scrollHeight; }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
