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
