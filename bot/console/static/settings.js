// Message text editors: as the operator types (or picks another member), render the draft
// on the server in the same sandbox and with the same checks as saving, and show the text
// or what is wrong. The variable picker inserts a variable at the cursor.
"use strict";

(function () {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-insert]");
    if (!button) return;
    event.preventDefault();
    const area = document.getElementById(button.dataset.into);
    if (!area) return;
    const start = area.selectionStart ?? area.value.length;
    const end = area.selectionEnd ?? start;
    area.value = area.value.slice(0, start) + button.dataset.insert + area.value.slice(end);
    area.selectionStart = area.selectionEnd = start + button.dataset.insert.length;
    area.focus();
    area.dispatchEvent(new Event("input", { bubbles: true }));
  });

  const form = document.getElementById("text-form");
  if (!form) return;
  const DELAY = 300;
  let timer = null;
  let asked = 0;

  async function preview() {
    const question = ++asked;
    const member = document.querySelector('[data-testid="preview-member"]');
    try {
      const answer = await window.siyu.postJSON(form.dataset.preview, {
        text: form.elements.text.value, member: member ? member.value : "",
      });
      if (question !== asked) return;
      document.querySelector("[data-preview-text]").textContent = answer.text;
      const list = document.querySelector("[data-preview-problems]");
      list.replaceChildren(...answer.problems.map((text) => {
        const li = document.createElement("li");
        li.textContent = text;
        return li;
      }));
    } catch (error) { /* the form still saves; saving checks again */ }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(preview, DELAY);
  }
  form.addEventListener("input", later);
  document.addEventListener("change", (event) => {
    if (event.target.matches('[data-testid="preview-member"]')) later();
  });
})();
