// lb-demo live cluster page. The server pushes htmx out-of-band swaps over the websocket;
// this module adds what HTML alone cannot: frame acknowledgements (the server's flow
// control), the live/reconnecting indicator, pod enter/leave animations, the scale
// slider's feedback, ticking ages and error toasts. No inline script: the CSP forbids it.
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

  // Cards new to this page fade in; cards the server marked "leaving" fade out and go.
  function animateCards(initial) {
    document.querySelectorAll(".pod-card").forEach((card) => {
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
    });
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
    animateCards(false);
    syncSlider();
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
    const card = event.target.closest && event.target.closest(".pod-card");
    if (card && event.target.classList.contains("kill-form")) card.classList.add("killing");
  });

  document.addEventListener("DOMContentLoaded", () => {
    animateCards(true);
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
