// Sustain web UI: live refresh without a framework.
// An element <div data-refresh="MS" data-src="URL"> is re-fetched every MS milliseconds
// (same origin, the session cookie goes along) while the tab is visible, and its content is
// swapped for the answer.  A refresh never replaces an element the user is typing in, and
// the "Live" switch in the corner pauses every refresh on the page.
const live = document.querySelectorAll("[data-refresh]");
let paused = false;

async function refresh(el) {
  if (paused || document.hidden) return;
  if (el.contains(document.activeElement) && document.activeElement !== document.body) return;
  try {
    const answer = await fetch(el.dataset.src, { credentials: "same-origin" });
    if (answer.ok) {
      const open = new Set(
        [...el.querySelectorAll("details[open]")].map((d) => d.dataset.id),
      );
      el.innerHTML = await answer.text();
      for (const d of el.querySelectorAll("details")) {
        if (open.has(d.dataset.id)) d.open = true;
      }
      el.dataset.refreshedAt = String(Date.now());
      // An execution page stops polling once nothing in it is pending any more.
      if ("untilSettled" in el.dataset && !el.querySelector('[data-state="pending"]')) {
        clearInterval(Number(el.dataset.timer));
      }
    }
  } catch (error) {
    // The server may be restarting: try again at the next tick.
  }
}

for (const el of live) {
  el.dataset.timer = String(setInterval(() => refresh(el), Number(el.dataset.refresh) || 2000));
}

if (live.length) {
  const toggle = document.createElement("button");
  toggle.className = "live-toggle";
  toggle.textContent = "Live ●";
  toggle.addEventListener("click", () => {
    paused = !paused;
    toggle.textContent = paused ? "Paused ○" : "Live ●";
  });
  document.body.appendChild(toggle);
}
