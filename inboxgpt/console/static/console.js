// Live updates: every part of the page marked data-live is read again from its URL every few seconds (the server
// renders it, escaped), so new messages appear without reloading. A session that ended sends the page to sign-in.
"use strict";
const EVERY_MS = 2500;

document.querySelectorAll("[data-live]").forEach((part) => {
  let shown = null;
  const refresh = async () => {
    try {
      const response = await fetch(part.dataset.live, { credentials: "same-origin", cache: "no-store" });
      if (response.redirected) {
        window.location.reload();
        return;
      }
      if (!response.ok) return;
      const html = await response.text();
      if (html !== shown) {
        shown = html;
        part.innerHTML = html;
      }
    } catch (error) {
      // Offline for a moment: the next round tries again.
    }
  };
  setInterval(refresh, EVERY_MS);
});

// A conversation opens at its newest message.
const entries = document.querySelector(".entries");
if (entries) entries.lastElementChild?.scrollIntoView({ block: "end" });
