// Settings forms: "再加一条" adds an empty row like the last one (the server numbers rows
// by their field names, so the copy takes the next free number). Without scripts the
// form still works: it always ends with one empty row.
"use strict";

(function () {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-add-row]");
    if (!button) return;
    event.preventDefault();
    const group = button.dataset.addRow;
    const rows = button.parentElement.querySelectorAll(".form-row");
    if (!rows.length) return;
    const last = rows[rows.length - 1];
    const pattern = new RegExp("^" + group + "-(\\d+)-");
    let next = 0;
    button.form.querySelectorAll("[name^='" + group + "-']").forEach((field) => {
      const found = pattern.exec(field.name);
      if (found) next = Math.max(next, Number(found[1]) + 1);
    });
    const copy = last.cloneNode(true);
    copy.dataset.row = String(next);
    copy.querySelectorAll("[name]").forEach((field) => {
      field.name = field.name.replace(pattern, group + "-" + next + "-");
      if (field.dataset.testid) field.dataset.testid = field.dataset.testid.replace(pattern, group + "-" + next + "-");
      if (field.tagName === "SELECT") field.selectedIndex = 0;
      else if (field.type === "checkbox") field.checked = false;
      else field.value = "";
    });
    copy.querySelectorAll(".field-problems").forEach((list) => list.replaceChildren());
    last.after(copy);
    const first = copy.querySelector("input:not([type=hidden]), textarea");
    if (first) first.focus();
  });
})();

// Care: a layer without its own rule follows "every other layer"; its boxes wait, greyed,
// until "own rule" is ticked (disabled boxes are not posted, and the server ignores them anyway).
(function () {
  function follow(own) {
    const row = own.closest(".form-row");
    row.querySelectorAll("input:not([type=hidden])").forEach((field) => {
      if (field !== own) field.disabled = !own.checked;
    });
  }
  document.querySelectorAll("input[type=checkbox][name$='-own']").forEach(follow);
  document.addEventListener("change", (event) => {
    if (event.target.matches("input[type=checkbox][name$='-own']")) follow(event.target);
  });
})();

// FAQ answers: as the operator types, the answer is rendered on the server for a sample
// member (the same sandbox and checks as saving) and shown under it, or what is wrong.
(function () {
  const form = document.querySelector("form[data-preview]");
  if (!form) return;
  const timers = new WeakMap();
  const asked = new WeakMap();

  async function preview(area) {
    const box = area.closest(".form-row").querySelector("[data-answer-preview]");
    if (!box) return;
    const question = (asked.get(area) || 0) + 1;
    asked.set(area, question);
    if (!area.value.trim()) { box.classList.remove("shown"); return; }
    try {
      const answer = await window.siyu.postJSON(form.dataset.preview, { text: area.value, member: "" });
      if (asked.get(area) !== question) return;
      box.querySelector("[data-preview-text]").textContent = answer.text;
      box.querySelector("[data-preview-problems]").replaceChildren(...answer.problems.map((text) => {
        const li = document.createElement("li");
        li.textContent = text;
        return li;
      }));
      box.classList.add("shown");
    } catch (error) { /* saving checks again */ }
  }

  form.addEventListener("input", (event) => {
    const area = event.target.closest("textarea[data-answer]");
    if (!area) return;
    clearTimeout(timers.get(area));
    timers.set(area, setTimeout(() => preview(area), 300));
  });
})();

// Tag rules: a new rule shows the fields of the kind chosen only (the server reads that kind's only).
(function () {
  function show(select) {
    const row = select.closest(".form-row");
    row.querySelectorAll("[data-kind-fields]").forEach((part) => { part.hidden = part.dataset.kindFields !== select.value; });
  }
  document.querySelectorAll("select[data-rule-kind]").forEach(show);
  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-rule-kind]")) show(event.target);
  });
})();

// Event rules: the subject list offers what the chosen event names (channels, customer
// groups or stores), nothing for an event that names none.
(function () {
  function offer(select) {
    const wanted = select.selectedOptions[0] ? select.selectedOptions[0].dataset.subject || "" : "";
    const subject = select.closest(".form-row").querySelector("select[name$='-subject']");
    if (!subject) return;
    subject.querySelectorAll("optgroup").forEach((group) => { group.disabled = group.dataset.subject !== wanted; });
    const chosen = subject.selectedOptions[0];
    if (chosen && chosen.parentElement.disabled) subject.value = "";
    subject.disabled = !wanted;
  }
  document.querySelectorAll("select[data-rule-event]").forEach(offer);
  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-rule-event]")) offer(event.target);
  });
})();

// Layer conditions: the number of days is asked for interactions only.
document.addEventListener("change", (event) => {
  if (!event.target.matches("select[data-condition-metric]")) return;
  const days = event.target.closest(".condition").querySelector("[data-interaction-days]");
  if (days) days.hidden = event.target.value !== "interactions";
});
