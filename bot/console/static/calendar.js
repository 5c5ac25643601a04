// The calendar entry form: as the operator types, ask the server to check the entry
// (the same checks as `siyu calendar load`) and show each problem by its field, the
// text for a sample member, the next fire times and the audience. The form works
// without this; saving checks again on the server.
"use strict";

(function () {
  const form = document.getElementById("calendar-form");
  if (!form) return;
  const DELAY = 400; // ms after the last keystroke
  let timer = null;
  let asked = 0; // answers to older questions are dropped

  function fields() {
    const body = { original: form.dataset.original || "" };
    for (const [name, value] of new FormData(form)) {
      if (name !== "csrf") body[name] = value;
    }
    return body;
  }

  function showWhen() {
    const chosen = form.querySelector('input[name="when"]:checked');
    const when = chosen ? chosen.value : "cron";
    for (const label of form.querySelectorAll("[data-when]")) {
      label.hidden = label.dataset.when !== when;
    }
    const repeat = form.elements.repeat ? form.elements.repeat.value : "cron";
    for (const label of form.querySelectorAll("[data-repeat]")) {
      label.hidden = !label.dataset.repeat.split(" ").includes(repeat);
    }
    // Attachments only where the channel takes them (anything typed stays in sight).
    const channel = form.elements.channel ? form.elements.channel.value : "";
    for (const box of form.querySelectorAll("[data-for-channels]")) {
      const typed = [...box.querySelectorAll("input")].some((input) => input.value.trim());
      box.hidden = !typed && !box.dataset.forChannels.split(" ").includes(channel);
    }
  }

  function fill(list, items) {
    list.replaceChildren(...items.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }));
  }

  function showProblems(problems) {
    const all = [];
    for (const list of document.querySelectorAll("[data-problems-for]")) {
      const found = problems[list.dataset.problemsFor] || [];
      fill(list, found);
      const label = list.closest("label");
      if (label) label.classList.toggle("invalid", found.length > 0);
    }
    for (const found of Object.values(problems)) all.push(...found);
    const box = document.querySelector("[data-all-problems]");
    fill(box.querySelector("ul"), all);
    box.hidden = all.length === 0;
    return all.length;
  }

  function number(n) {
    return Number(n).toLocaleString("en-US");
  }

  function showPreview(preview) {
    const card = document.querySelector('[data-testid="entry-preview"]');
    card.querySelector("[data-preview-empty]").hidden = Boolean(preview);
    card.querySelector("[data-preview-body]").hidden = !preview;
    if (!preview) return;
    card.querySelector("[data-preview-paused]").hidden = !preview.paused;
    const sample = card.querySelector("[data-preview-sample]");
    const who = (preview.sample.name || "—") + (preview.sample.store && !preview.sample.made_up ? " · " + preview.sample.store : "");
    sample.textContent = (preview.sample.made_up ? sample.dataset.madeUp : sample.dataset.real).replace("{name}", who);
    card.querySelector("[data-preview-text]").textContent = preview.text;
    const times = card.querySelector("[data-preview-times]");
    fill(times, preview.upcoming.length ? preview.upcoming : [times.dataset.none]);
    const audience = card.querySelector("[data-preview-audience]");
    audience.textContent = audience.dataset.template
      .replace("{audience}", number(preview.audience)).replace("{reached}", number(preview.reached));
    fill(card.querySelector("[data-preview-held]"), preview.held.map(([label, count]) => label + "：" + number(count)));
    const attached = card.querySelector("[data-preview-attachments]");
    fill(attached, preview.attachments || []);
    attached.hidden = !(preview.attachments || []).length;
  }

  async function check() {
    const question = ++asked;
    const status = document.querySelector("[data-check-status]");
    status.classList.add("busy");
    status.textContent = "…";
    try {
      const answer = await window.siyu.postJSON(form.dataset.validate, fields());
      if (question !== asked) return;
      const count = showProblems(answer.problems || {});
      showPreview(answer.preview);
      status.textContent = count ? "✗ " + count : "✓";
    } catch (error) {
      if (question === asked) status.textContent = "";
    } finally {
      if (question === asked) status.classList.remove("busy");
    }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, DELAY);
  }

  // A chip adds its name to the box it belongs to (and picks its layer's scheme).
  form.addEventListener("click", (event) => {
    const chip = event.target.closest("button.chip[data-add-to]");
    if (!chip) return;
    event.preventDefault();
    const input = form.elements[chip.dataset.addTo];
    const names = input.value.split(/[,，、;；\n]+/).map((s) => s.trim()).filter(Boolean);
    if (!names.includes(chip.dataset.value)) names.push(chip.dataset.value);
    input.value = names.join(", ");
    if (chip.dataset.scheme) form.elements.scheme.value = chip.dataset.scheme;
    later();
  });
  form.addEventListener("input", later);
  form.addEventListener("change", () => { showWhen(); later(); });
  showWhen();
})();
