// Small helpers shared by the console pages. Pages work without JavaScript; this adds
// live validation and previews where a page asks for them.
"use strict";

window.siyu = {
  csrf() {
    return document.querySelector('meta[name="csrf-token"]').content;
  },
  // POST `body` as JSON with the session's CSRF token; resolves to the parsed answer.
  async postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": window.siyu.csrf() },
      body: JSON.stringify(body),
    });
    return response.json();
  },
};

// The members page's segment builder: the count follows every change, before "筛选".
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("segment-form");
  if (!form) return;
  const shown = form.querySelector('[data-testid="segment-count"]');
  let asked = 0;
  const recount = async () => {
    const mine = ++asked;
    const query = new URLSearchParams(new FormData(form)).toString();
    const response = await fetch(form.dataset.countUrl + "?" + query, { headers: { Accept: "application/json" } });
    if (!response.ok || mine !== asked) return;
    const answer = await response.json();
    shown.textContent = answer.problems.length ? answer.problems.join("；") : answer.text;
    shown.dataset.count = answer.count;
  };
  form.addEventListener("change", recount);
  form.addEventListener("input", recount);
});
