/* Morosos: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";


  // --- htmx: keep filter URLs short (drop empty parameters) -----------------------------
  document.addEventListener("htmx:configRequest", (evt) => {
    if (evt.detail.verb !== "get" || !evt.detail.formData) return;
    const fd = evt.detail.formData;
    for (const [key, value] of Array.from(fd.entries())) {
      if (value === "") fd.delete(key);
    }
  });

  // After a sort or page link, the filter form must keep the new sort for the next search.
  document.addEventListener("htmx:pushedIntoHistory", (evt) => {
    const form = document.getElementById("client-filters");
    if (!form || !form.elements.sort) return;
    const params = new URL(evt.detail.path, window.location.origin).searchParams;
    form.elements.sort.value = params.get("sort") || "";
  });

  // The language switch returns to the page as it is now (htmx may have changed the URL).
  document.addEventListener("submit", (evt) => {
    const next = evt.target.querySelector('input[name="next"][data-current-url]');
    if (next) next.value = window.location.pathname + window.location.search + window.location.hash;
  });

  // --- client list: bulk selection --------------------------------------------------------
  function refreshBulk() {
    const boxes = document.querySelectorAll('input[name="clients"][form="bulk-assign"]');
    const checked = Array.from(boxes).filter((b) => b.checked).length;
    document.querySelectorAll("[data-selected-count]").forEach((el) => (el.textContent = checked));
    document.querySelectorAll("[data-bulk-submit]").forEach((el) => (el.disabled = checked === 0));
    const all = document.querySelector("[data-select-all]");
    if (all) {
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    document.querySelectorAll(".bulk-bar").forEach((bar) => bar.classList.toggle("has-selection", checked > 0));
  }

  document.addEventListener("change", (evt) => {
    const target = evt.target;
    if (target.matches("[data-select-all]")) {
      document
        .querySelectorAll('input[name="clients"][form="bulk-assign"]')
        .forEach((b) => (b.checked = target.checked));
      refreshBulk();
    } else if (target.matches('input[name="clients"]')) {
      refreshBulk();
    }
  });
  document.addEventListener("htmx:afterSettle", refreshBulk);

  // --- "select every row of this page" boxes: data-check-all="<selector of the boxes>" ------
  document.addEventListener("change", (evt) => {
    const selector = evt.target.dataset && evt.target.dataset.checkAll;
    if (!selector) return;
    document.querySelectorAll(selector).forEach((b) => (b.checked = evt.target.checked));
  });

  // --- forms that ask first: data-confirm="<question>" --------------------------------------
  document.addEventListener("submit", (evt) => {
    const message = evt.target.dataset && evt.target.dataset.confirm;
    if (message && !window.confirm(message)) evt.preventDefault();
  });

  // --- copy buttons: data-copy="<id of the input whose value is copied>" ---------------------
  document.addEventListener("click", (evt) => {
    const btn = evt.target.closest("[data-copy]");
    if (!btn) return;
    const input = document.getElementById(btn.dataset.copy);
    if (!input) return;
    const done = () => {
      const label = btn.querySelector("[data-copy-label]");
      if (label && btn.dataset.copied) label.textContent = btn.dataset.copied;
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, () => {
        input.select();
        document.execCommand("copy");
        done();
      });
    } else {
      input.select();
      document.execCommand("copy");
      done();
    }
  });

  // --- client page: sections loaded when their tab is opened ------------------------------
  // Each tab links to ?tab=<section> (the page with that section inline: works without this
  // file); here a click fetches the section's fragment once and shows it in place.
  const sectionTabs = () => document.querySelectorAll("[data-client-sections] [data-section]");

  function sectionTab(name) {
    return document.querySelector(`[data-client-sections] [data-section="${CSS.escape(name)}"]`);
  }

  function scrollToAnchor(anchor) {
    const el = anchor && document.getElementById(anchor);
    if (el) el.scrollIntoView({ block: "start" });
  }

  function openSection(name, anchor) {
    const tab = sectionTab(name);
    if (!tab) return false;
    const pane = document.getElementById(tab.getAttribute("aria-controls"));
    sectionTabs().forEach((t) => {
      const active = t === tab;
      t.classList.toggle("active", active);
      t.setAttribute("aria-selected", active ? "true" : "false");
      const other = document.getElementById(t.getAttribute("aria-controls"));
      if (other) other.hidden = !active;
    });
    document.querySelectorAll("[data-section-hint]").forEach((el) => (el.hidden = true));
    const url = new URL(window.location.href);
    url.search = `?tab=${encodeURIComponent(name)}`;
    url.hash = anchor ? `#${anchor}` : "";
    history.replaceState(history.state, "", url);
    if (pane.hasAttribute("data-loaded")) {
      scrollToAnchor(anchor);
      return true;
    }
    pane.setAttribute("aria-busy", "true");
    pane.innerHTML = `<div class="p-4 text-center text-body-secondary"><span class="spinner-border spinner-border-sm" role="status"></span></div>`;
    fetch(tab.dataset.sectionUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then((r) => {
        if (!r.ok) throw new Error(String(r.status));
        return r.text();
      })
      .then((html) => {
        pane.innerHTML = html;
        pane.setAttribute("data-loaded", "");
        if (window.htmx) window.htmx.process(pane);
        scrollToAnchor(anchor);
      })
      .catch(() => {
        // Without the fragment, the page itself shows the section (the link's own target).
        window.location.assign(tab.href);
      })
      .finally(() => pane.removeAttribute("aria-busy"));
    return true;
  }

  document.addEventListener("click", (evt) => {
    if (evt.defaultPrevented || evt.button !== 0 || evt.metaKey || evt.ctrlKey || evt.shiftKey || evt.altKey) return;
    const tab = evt.target.closest("[data-client-sections] [data-section]");
    const link = tab ? null : evt.target.closest("[data-open-section]");
    if (!tab && !link) return;
    const name = tab ? tab.dataset.section : link.dataset.openSection;
    if (openSection(name, link ? link.dataset.anchor || "" : "")) {
      evt.preventDefault();
      if (link && !link.dataset.anchor) tabContainer().scrollIntoView({ block: "start" });
    }
  });

  function tabContainer() {
    return document.querySelector("[data-client-sections]");
  }

  // A link to an anchor that lives in a section not rendered (#facturas, #portal, #perfil...):
  // open the section that holds it. Anchors of the summary (#respuestas, #alertas) are there.
  const SECTION_OF_ANCHOR = {
    perfil: "cobranza",
    compromisos: "cobranza",
    portal: "cobranza",
    cobranza: "cobranza",
    envios: "cobranza",
  };

  function openSectionFromHash() {
    if (!tabContainer()) return;
    const id = decodeURIComponent(window.location.hash.slice(1));
    if (!id || document.getElementById(id)) return;
    const name = id.startsWith("seccion-") ? id.slice(8) : SECTION_OF_ANCHOR[id] || id;
    if (sectionTab(name)) openSection(name, SECTION_OF_ANCHOR[id] || name !== id ? id : "");
  }
  window.addEventListener("hashchange", openSectionFromHash);

  // --- invoice status dialog ----------------------------------------------------------------
  document.addEventListener("click", (evt) => {
    const link = evt.target.closest("[data-invoice-status]");
    const modalEl = document.getElementById("invoice-status-modal");
    if (!link || !modalEl || !window.bootstrap) return;
    evt.preventDefault();
    const form = modalEl.querySelector("form");
    form.action = link.dataset.url;
    form.elements.status.value = link.dataset.invoiceStatus;
    form.elements.reason.value = "";
    modalEl.querySelector("[data-invoice-number]").textContent = link.dataset.number;
    window.bootstrap.Modal.getOrCreateInstance(modalEl).show();
    modalEl.addEventListener("shown.bs.modal", () => form.elements.reason.focus(), { once: true });
  });

  // --- payment form: manual allocation ------------------------------------------------------
  function setupPaymentForm(form) {
    const manual = form.querySelector("[data-manual-allocations]");
    const autoHelp = form.querySelector("[data-auto-help]");
    const amountInput = form.elements.amount;
    const currencyInput = form.elements.currency;
    const toNumber = (v) => {
      const n = parseFloat(String(v || "").replace(",", "."));
      return Number.isFinite(n) ? n : 0;
    };

    function mode() {
      const checked = form.querySelector('input[name="mode"]:checked');
      return checked ? checked.value : "auto";
    }

    // The active number format's locale (accounts/numbers.py), read by the browser's Intl.
    function money(value) {
      const locale = form.dataset.moneyLocale || document.documentElement.lang || "es";
      const currency = (currencyInput.value || "").trim().toUpperCase();
      try {
        return new Intl.NumberFormat(locale, { style: "currency", currency }).format(value);
      } catch (e) {
        return new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
      }
    }

    function update() {
      const isManual = mode() === "manual";
      if (manual) manual.hidden = !isManual;
      if (autoHelp) autoHelp.hidden = isManual;
      const currency = (currencyInput.value || "").trim().toUpperCase();
      let total = 0;
      form.querySelectorAll("tr[data-currency]").forEach((row) => {
        const other = currency && row.dataset.currency !== currency;
        row.classList.toggle("other-currency", other);
        const input = row.querySelector("[data-allocation]");
        total += toNumber(input.value);
      });
      const amount = toNumber(amountInput.value);
      const totalEl = form.querySelector("[data-allocated-total]");
      const remainingEl = form.querySelector("[data-remaining]");
      if (totalEl) {
        totalEl.textContent = money(total);
        totalEl.classList.toggle("text-danger", total > amount);
      }
      if (remainingEl) remainingEl.textContent = money(Math.max(amount - total, 0));
    }

    form.addEventListener("input", update);
    form.addEventListener("change", update);
    form.addEventListener("click", (evt) => {
      const btn = evt.target.closest("[data-fill]");
      if (!btn) return;
      const input = document.getElementById(btn.dataset.fill);
      const balance = toNumber(btn.dataset.amount);
      let allocated = 0;
      form.querySelectorAll("[data-allocation]").forEach((i) => {
        if (i !== input) allocated += toNumber(i.value);
      });
      const left = Math.max(toNumber(amountInput.value) - allocated, 0);
      input.value = (amountInput.value ? Math.min(balance, left) : balance).toFixed(2);
      update();
    });
    update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-payment-form]").forEach(setupPaymentForm);
    openSectionFromHash();
    refreshBulk();
  });
})();
