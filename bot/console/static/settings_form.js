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
