// lb-demo live cluster page. The server pushes htmx out-of-band swaps over the websocket;
// this module adds what HTML alone cannot: frame acknowledgements (the server's flow
// control), the live/reconnecting indicator, pod enter/leave animations, a group's "k more"
// (unfolded again after a snapshot), the pod filter (its results with the cards' actions), the
// scale slider's feedback, ticking ages and error toasts. No inline script: the CSP forbids it.
(function () {
  "use strict";

  const known = new Set();
  let sliderBusy = false;
  let toastTimer = null;

  function statusEl() { return document.getElementById("status"); }

  // "live" is only ever shown by the server's status element (it says "live" only once a
  // complete snapshot has arrived); a socket that just opened says "connecting…" until then.
  function setReconnecting(on, label) {
    const el = statusEl();
    if (!el) return;
    el.classList.toggle("reconnecting", on);
    const text = el.querySelector(".status-text");
    if (text) text.textContent = on ? (label || "reconnecting…") : (text.dataset.live || "live");
  }

  function showToast(message, sticky) {
    const toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = message;
    toast.classList.add("visible");
    clearTimeout(toastTimer);
    if (!sticky) toastTimer = setTimeout(() => toast.classList.remove("visible"), 4000);
  }

  // After a few failed reconnects, find out whether the session ended (the server then
  // refuses the handshake, which the browser only reports as a dropped socket).
  let failedReconnects = 0;
  function checkSession() {
    fetch(window.location.pathname, { credentials: "same-origin", redirect: "manual",
                                      headers: { "HX-Request": "true" } })
      .then((r) => {
        if (r.status === 403 || r.type === "opaqueredirect") {
          showToast("You are logged out: reload the page to log in again.", true);
        }
      })
      .catch(() => { /* the dashboard itself is down; the socket keeps retrying */ });
  }

  // Cards new to this page fade in; cards the server marked "leaving" fade out and go. A
  // MutationObserver hands over exactly the cards a frame added, so the work per frame is
  // proportional to the change, never a walk over every card.
  function noteCard(card, initial) {
    if (card.classList.contains("leaving")) {
      if (!card.dataset.removing) {
        card.dataset.removing = "1";
        setTimeout(() => { card.remove(); known.delete(card.id); }, 700);
      }
      return;
    }
    if (!known.has(card.id)) {
      known.add(card.id);
      if (!initial) {
        card.classList.add("entering");
        setTimeout(() => card.classList.remove("entering"), 800);
      }
    }
  }

  function noteAdded(node) {
    if (node.nodeType !== 1) return;
    if (node.classList.contains("pod-card")) { noteCard(node, false); return; }
    // A group or a batch of cards: only its own cards (a few, bounded by the group's window).
    node.querySelectorAll(".pod-card").forEach((card) => noteCard(card, false));
  }

  function observeCards() {
    const live = document.getElementById("live");
    if (!live) return;
    live.querySelectorAll(".pod-card").forEach((card) => noteCard(card, true));  // once, at load
    new MutationObserver((records) => {
      for (const record of records) record.addedNodes.forEach(noteAdded);
    }).observe(live, { childList: true, subtree: true });
  }

  // "k more": fetch the group's next cards from the dashboard's cache into its extra list
  // (frames keep them current like every card); "show fewer" empties it again.
  function moreUrl() {
    const filter = document.getElementById("pod-filter");
    return (filter && filter.dataset.moreUrl) || "/pods/more";
  }

  // What the user unfolded (group id -> cards asked for): a snapshot (a resync, a reconnect)
  // rebuilds the pod sections with every group folded, and the page unfolds them again.
  const expanded = new Map();

  function expand(group, count) {
    const extra = document.getElementById("extra-" + group);
    if (!extra || extra.dataset.loading) return;
    expanded.set(group, count);
    extra.dataset.loading = "1";
    fetch(moreUrl() + "?group=" + encodeURIComponent(group) + "&count=" + count,
          { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then((r) => { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
      .then((html) => {
        if (!expanded.has(group) || !extra.isConnected) return;  // folded or replaced meanwhile
        extra.innerHTML = html;
        // A card that entered the window meanwhile is shown there already.
        extra.querySelectorAll(".pod-card").forEach((card) => {
          const other = document.getElementById(card.id);
          if (other && other !== card) card.remove();
        });
        extra.closest(".pod-group").classList.add("expanded");
        if (window.htmx) window.htmx.process(extra);
      })
      .catch(() => { expanded.delete(group); showToast("Could not load more pods."); })
      .finally(() => { delete extra.dataset.loading; });
  }

  // After every frame: a group the user unfolded that came back folded (a snapshot replaced it).
  function restoreExpanded() {
    expanded.forEach((count, group) => {
      const extra = document.getElementById("extra-" + group);
      if (extra && !extra.dataset.loading && !extra.closest(".pod-group").classList.contains("expanded")) {
        expand(group, count);
      }
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest(".more-button, .fewer-button");
    if (!button) return;
    const group = button.dataset.group;
    const extra = document.getElementById("extra-" + group);
    if (!extra) return;
    if (button.classList.contains("fewer-button")) {
      expanded.delete(group);
      extra.innerHTML = "";
      extra.closest(".pod-group").classList.remove("expanded");
      return;
    }
    expand(group, extra.querySelectorAll(".pod-card").length + 50);
  });

  // The pod filter asks the dashboard (which holds every pod; the page holds only what it
  // shows); while a filter is set, frames re-run it, at most once a second.
  let filterTimer = null;
  let filterDue = 0;
  let filterSeq = 0;
  function runFilter() {
    filterTimer = null;
    const input = document.getElementById("pod-filter");
    const results = document.getElementById("pod-filter-results");
    if (!input || !results) return;
    const query = input.value.trim();
    const mine = ++filterSeq;
    if (!query) { results.innerHTML = ""; results.dataset.query = ""; return; }
    filterDue = Date.now() + 1000;
    fetch(input.dataset.url + "?q=" + encodeURIComponent(query),
          { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then((r) => r.text())
      .then((html) => {
        if (mine !== filterSeq) return;  // a newer query is on its way
        results.innerHTML = html;
        results.dataset.query = query;
        if (window.htmx) window.htmx.process(results);  // a found backend pod's kill / readiness buttons
      })
      .catch(() => { /* the socket's indicator already says when the dashboard is away */ });
  }
  function scheduleFilter(delay) {
    if (filterTimer !== null) return;
    filterTimer = setTimeout(runFilter, delay);
  }

  function syncSlider() {
    const deployment = document.getElementById("deployment");
    const slider = document.getElementById("scale-slider");
    const output = document.getElementById("scale-value");
    if (!deployment || !slider || sliderBusy || deployment.dataset.exists !== "true") return;
    slider.value = deployment.dataset.desired;
    if (output) output.textContent = deployment.dataset.desired;
  }

  // kubectl's AGE column (apimachinery HumanDuration), kept ticking between frames.
  function humanAge(seconds) {
    if (seconds < 0) seconds = 0;
    const m = Math.floor(seconds / 60), h = Math.floor(seconds / 3600), d = Math.floor(h / 24);
    if (seconds < 120) return seconds + "s";
    if (m < 10) return seconds % 60 ? m + "m" + (seconds % 60) + "s" : m + "m";
    if (m < 180) return m + "m";
    if (h < 8) return m % 60 ? h + "h" + (m % 60) + "m" : h + "h";
    if (h < 48) return h + "h";
    if (h < 192) return h % 24 ? d + "d" + (h % 24) + "h" : d + "d";
    return d + "d";
  }

  function tickAges() {
    const now = Date.now();
    document.querySelectorAll(".age[data-created]").forEach((el) => {
      const created = Date.parse(el.dataset.created);
      if (!Number.isNaN(created)) el.textContent = humanAge(Math.floor((now - created) / 1000));
    });
  }

  // The page has more than one htmx websocket (the lessons rail has its own): only the cluster
  // socket's events (#live) drive the indicator, the acks and the frame hooks.
  function fromClusterSocket(event) {
    return Boolean(event.target && event.target.id === "live");
  }

  document.addEventListener("htmx:wsAfterMessage", (event) => {
    if (!fromClusterSocket(event)) return;
    const el = statusEl();
    const seq = el ? parseInt(el.dataset.seq, 10) : NaN;
    if (!Number.isNaN(seq)) {
      event.detail.socketWrapper.send(JSON.stringify({ type: "ack", seq: seq }));
    }
    syncSlider();
    restoreExpanded();
    const filter = document.getElementById("pod-filter");
    if (filter && filter.value.trim()) scheduleFilter(Math.max(0, filterDue - Date.now()));
    document.dispatchEvent(new CustomEvent("lbdemo:frame", { detail: { seq: seq } }));
  });
  let opened = false;
  document.addEventListener("htmx:wsOpen", (event) => {
    if (!fromClusterSocket(event)) return;
    failedReconnects = 0;
    // The first page load is current (rendered from the cache a moment ago); a reconnected
    // page is not until the server's first message.
    if (opened) setReconnecting(true, "connecting…");
    opened = true;
  });
  document.addEventListener("htmx:wsClose", (event) => {
    if (!fromClusterSocket(event)) return;
    setReconnecting(true);
    failedReconnects += 1;
    if (failedReconnects === 3) checkSession();
  });
  document.addEventListener("htmx:wsError", (event) => { if (fromClusterSocket(event)) setReconnecting(true); });

  document.addEventListener("htmx:responseError", (event) => {
    let message = "The action failed (" + event.detail.xhr.status + ").";
    try { message = JSON.parse(event.detail.xhr.responseText).error || message; } catch (e) { /* not JSON */ }
    showToast(message);
    // A refused scale changes nothing: put the slider back on the Deployment's real value.
    sliderBusy = false;
    syncSlider();
  });
  document.addEventListener("htmx:sendError", () => showToast("The dashboard did not answer."));
  document.addEventListener("htmx:beforeRequest", (event) => {
    const card = event.target.closest && event.target.closest(".pod-card, .find-result");
    if (card && event.target.classList.contains("kill-form")) card.classList.add("killing");
  });

  document.addEventListener("DOMContentLoaded", () => {
    observeCards();
    const filter = document.getElementById("pod-filter");
    if (filter) {
      filter.addEventListener("input", () => {
        if (filterTimer !== null) { clearTimeout(filterTimer); filterTimer = null; }
        scheduleFilter(150);
      });
    }
    const slider = document.getElementById("scale-slider");
    const output = document.getElementById("scale-value");
    if (slider) {
      // While the learner drags, frames must not move the thumb; shortly after release they may.
      const release = () => { setTimeout(() => { sliderBusy = false; syncSlider(); }, 1500); };
      slider.addEventListener("pointerdown", () => { sliderBusy = true; });
      slider.addEventListener("pointerup", release);
      slider.addEventListener("pointercancel", release);
      slider.addEventListener("input", () => { if (output) output.textContent = slider.value; });
      slider.addEventListener("change", release);
    }
    setInterval(tickAges, 1000);
  });
})();
