/* Morosos: the policy editor's pages (message templates, steps). Each part runs only on its page. */

// --- message template form -------------------------------------------------------------
(function () {
  const form = document.getElementById("template-form");
  if (!form) return;
  const subjectChannels = (form.dataset.subjectChannels || "").split(",");
  const languageSelect = document.getElementById("preview-language");
  let lastField = null;

  // SMS and WhatsApp carry no subject.
  function showSubjects() {
    const hasSubject = subjectChannels.includes(form.elements.channel.value);
    form.querySelectorAll("[data-subject-field]").forEach((el) => (el.hidden = !hasSubject));
  }
  form.elements.channel.addEventListener("change", showSubjects);
  showSubjects();

  // The preview follows the language being edited.
  document.querySelectorAll("[data-language]").forEach((tab) => {
    tab.addEventListener("shown.bs.tab", () => {
      if (languageSelect.value === tab.dataset.language) return;
      languageSelect.value = tab.dataset.language;
      languageSelect.dispatchEvent(new Event("change", { bubbles: true }));
    });
  });

  // Placeholders go where the cursor was (the visible body by default).
  form.addEventListener("focusin", (evt) => {
    if (evt.target.matches("textarea, input[type=text]") && evt.target.name !== "name") lastField = evt.target;
  });
  document.addEventListener("click", (evt) => {
    const button = evt.target.closest("[data-insert]");
    if (!button) return;
    let field = lastField;
    if (!field || !field.closest(".tab-pane.active")) field = form.querySelector(".tab-pane.active textarea");
    if (!field) return;
    const text = button.dataset.insert;
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? field.value.length;
    field.setRangeText(text, start, end, "end");
    field.focus();
    field.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();

// --- step form ---------------------------------------------------------------------------
// Days only count before or after the due date; templates only for message channels,
// and only those of the step's channel.
(function () {
  const form = document.getElementById("step-form");
  if (!form) return;
  const messageChannels = (form.dataset.messageChannels || "").split(",");
  const timing = form.elements.timing, days = form.elements.days;
  const channel = form.elements.channel, template = form.elements.template;
  function update() {
    days.disabled = timing.value === "on";
    const sendsMessage = messageChannels.includes(channel.value);
    const wrapper = template.closest(".mb-3") || template.parentElement;
    wrapper.hidden = !sendsMessage;
    template.querySelectorAll("option[data-channel]").forEach((option) => {
      option.hidden = option.dataset.channel !== channel.value;
    });
    template.querySelectorAll("optgroup").forEach((group) => {
      group.hidden = !group.querySelector("option:not([hidden])");
    });
    const selected = template.selectedOptions[0];
    if (selected && selected.hidden) template.value = "";
  }
  form.addEventListener("change", update);
  update();
})();
