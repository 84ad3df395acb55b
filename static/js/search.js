/* Morosos: the header box's suggestions (accounts.views.client_suggest).
 *
 * As the collector types (2 characters or more, after a short pause) the box asks the server for
 * the best few matches and shows them under the box as an ARIA combobox: arrow keys move through
 * them, Enter opens the one chosen, Esc closes. Without a choice, Enter submits the form to the
 * full results page, as it does without this file.
 */
(function () {
  "use strict";

  const input = document.getElementById("header-q");
  const box = document.getElementById("header-suggest");
  if (!input || !box || !input.dataset.suggestUrl || !window.fetch) return;

  const MIN_CHARS = 2;
  const DELAY_MS = 180;
  let timer = null;
  let controller = null;
  let lastQuery = null;
  let active = -1;

  function options() {
    return Array.from(box.querySelectorAll('[role="option"]:not([aria-disabled="true"])'));
  }

  function setActive(index) {
    const opts = options();
    opts.forEach((el, i) => {
      el.setAttribute("aria-selected", i === index ? "true" : "false");
      el.classList.toggle("active", i === index);
    });
    active = index >= 0 && index < opts.length ? index : -1;
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", opts[active].id);
      opts[active].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function open() {
    if (!box.hasChildNodes()) return;
    box.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function close() {
    box.hidden = true;
    input.setAttribute("aria-expanded", "false");
    setActive(-1);
  }

  function fetchSuggestions(q) {
    if (controller) controller.abort();
    controller = new AbortController();
    const url = input.dataset.suggestUrl + "?" + new URLSearchParams({ q: q });
    // redirect: "error": an expired session answers with the login page, not suggestions.
    fetch(url, {
      signal: controller.signal,
      headers: { Accept: "text/html" },
      credentials: "same-origin",
      redirect: "error",
    })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        if (input.value.trim() !== q) return; // an answer to older text
        lastQuery = q;
        box.innerHTML = html; // the server's own escaped fragment
        setActive(-1);
        if (document.activeElement === input) open();
      })
      .catch(() => {}); // aborted or failed: the form still works
  }

  input.addEventListener("input", () => {
    const q = input.value.trim();
    clearTimeout(timer);
    if (q.length < MIN_CHARS) {
      if (controller) controller.abort();
      lastQuery = null;
      box.innerHTML = "";
      close();
      return;
    }
    if (q === lastQuery) {
      if (controller) controller.abort(); // an answer to other text is on its way
      open();
      return;
    }
    timer = setTimeout(() => fetchSuggestions(q), DELAY_MS);
  });

  input.addEventListener("keydown", (evt) => {
    const opts = options();
    if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
      if (!opts.length) return;
      evt.preventDefault();
      open();
      const step = evt.key === "ArrowDown" ? 1 : -1;
      const next = active < 0 ? (step > 0 ? 0 : opts.length - 1) : (active + step + opts.length) % opts.length;
      setActive(next);
    } else if (evt.key === "Enter") {
      if (!box.hidden && active >= 0 && opts[active]) {
        evt.preventDefault();
        window.location.assign(opts[active].href);
      }
      // Otherwise the form submits: the full results page.
    } else if (evt.key === "Escape") {
      if (!box.hidden) {
        evt.preventDefault();
        close();
      }
    }
  });

  input.addEventListener("focus", () => {
    if (input.value.trim() === lastQuery) open();
  });

  // A click on an option follows its link; a click anywhere else closes the list.
  document.addEventListener("mousedown", (evt) => {
    if (!box.contains(evt.target) && evt.target !== input) close();
  });
  box.addEventListener("mousemove", (evt) => {
    const option = evt.target.closest('[role="option"]');
    const index = options().indexOf(option);
    if (index >= 0 && index !== active) setActive(index);
  });
})();
