/* Morosos: the collector's workspace forms ("Registrar gestión", promises, plans).
   Progressive disclosure only: every form works without this file (all parts show). */
(function () {
  "use strict";
  if (window.morososWorkspace) return; // the panel and a page may both load it
  window.morososWorkspace = true;

  // data-ws-show="reached:reached;result:promise|plan_request" — shown while, in the same
  // form, each named input has one of the listed values (checked radio, select, ...).
  function valueOf(form, name) {
    const field = form.elements.namedItem(name);
    if (!field) return "";
    if (field instanceof RadioNodeList || (field.length !== undefined && !field.tagName)) {
      const checked = Array.from(field).find((el) => el.checked);
      return checked ? checked.value : "";
    }
    if (field.type === "radio" || field.type === "checkbox") return field.checked ? field.value : "";
    return field.value;
  }

  function matches(form, rule) {
    return rule.split(";").every((part) => {
      const [name, values] = part.split(":");
      return values.split("|").includes(valueOf(form, name.trim()));
    });
  }

  function refresh(root) {
    root.querySelectorAll("[data-ws-show]").forEach((el) => {
      const form = el.closest("form");
      if (form) el.hidden = !matches(form, el.dataset.wsShow);
    });
  }

  // Promise dates: the empty extra rows wait behind "Añadir otra fecha".
  function initRows(root) {
    root.querySelectorAll("[data-ws-rows]").forEach((box) => {
      if (box.dataset.wsReady) return;
      box.dataset.wsReady = "1";
      const rows = Array.from(box.querySelectorAll("[data-ws-row]"));
      rows.forEach((row, n) => {
        const filled = Array.from(row.querySelectorAll("input")).some((i) => i.value && i.type !== "hidden");
        const invalid = row.querySelector(".is-invalid, .invalid-feedback");
        row.hidden = n > 0 && !filled && !invalid;
      });
      updateAdd(box);
    });
  }

  function updateAdd(box) {
    const button = box.querySelector("[data-ws-add-row]");
    if (button) button.hidden = !box.querySelector("[data-ws-row][hidden]");
  }

  document.addEventListener("click", (evt) => {
    const button = evt.target.closest("[data-ws-add-row]");
    if (!button) return;
    evt.preventDefault();
    const box = button.closest("[data-ws-rows]");
    const next = box.querySelector("[data-ws-row][hidden]");
    if (next) {
      next.hidden = false;
      const input = next.querySelector("input");
      if (input) input.focus();
    }
    updateAdd(box);
  });

  // "Sí, hablamos" with nobody chosen: the client's primary contact (data-ws-primary).
  function preselectContact(form, changed) {
    if (changed.name !== "reached" || changed.value !== "reached" || !changed.checked) return;
    const select = form.querySelector("select[data-ws-primary]");
    if (select && !select.value) {
      select.value = select.dataset.wsPrimary;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  document.addEventListener("change", (evt) => {
    const form = evt.target.closest("form");
    if (!form) return;
    preselectContact(form, evt.target);
    refresh(form);
  });

  function init(root) {
    refresh(root);
    initRows(root);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => init(document));
  } else {
    init(document);
  }
  document.addEventListener("htmx:afterSettle", (evt) => init(evt.target));
})();
