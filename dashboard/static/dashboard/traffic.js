// Traffic lab panel: fills the target list and limits from /traffic/options.
// (The live views are drawn by the rest of this module as it grows.)
(function () {
  "use strict";
  const panel = document.getElementById("traffic-panel");
  if (!panel) return;
  fetch(panel.dataset.optionsUrl, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((options) => {
      if (!options) return;
      const select = document.getElementById("traffic-target");
      select.replaceChildren(...options.targets.map((t) => new Option(t.label, t.id)));
    })
    .catch(() => {});
})();
