// Live updates: every part of the page marked data-live is read again from its URL every few seconds (the server
// renders it, escaped), so new messages appear without reloading. A session that ended sends the page to sign-in.
// The next read is asked for only once the last has answered, so a slow server is never sent a pile of them, and not
// while the tab is hidden.
"use strict";
const EVERY_MS = 2500;

document.querySelectorAll("[data-live]").forEach((part) => {
  let shown = null;
  const refresh = async () => {
    if (document.hidden) {
      setTimeout(refresh, EVERY_MS);
      return;
    }
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
    setTimeout(refresh, EVERY_MS);
  };
  setTimeout(refresh, EVERY_MS);
});

// A conversation opens at its newest message.
const entries = document.querySelector(".entries");
if (entries) entries.lastElementChild?.scrollIntoView({ block: "end" });
