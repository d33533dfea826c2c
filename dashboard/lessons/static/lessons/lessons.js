// The lessons rail: copy buttons for the printed commands. Everything else is htmx (forms posted
// with hx-post, the rail pushed over /ws/lessons/). No inline script: the page's CSP forbids it.
(function () {
  "use strict";

  function copy(text, button) {
    const done = () => { button.textContent = "copied"; setTimeout(() => { button.textContent = "copy"; }, 1200); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => { button.textContent = "select + Ctrl-C"; });
    } else {
      button.textContent = "select + Ctrl-C";
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("#lessons button.copy");
    if (!button) return;
    const code = button.parentElement.querySelector("code");
    if (code) copy(code.textContent, button);
  });
})();
