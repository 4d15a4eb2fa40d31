// The review queue: each button that carries a data-key is pressed by that key (1-7 for an expression,
// Enter for "right", S to skip, U to undo). The buttons are ordinary form buttons: without this script,
// or with a screen reader, the page works by clicking them.
const buttons = new Map();
document.querySelectorAll("button[data-key]").forEach((button) => buttons.set(button.dataset.key.toLowerCase(), button));

// Once a form is sent, by a key or a click, the page is on its way to the next face: a second one would send
// the same face again, which the server takes for someone else's review of it. Reset when the page is shown
// again from the browser's history.
let sent = false;
document.addEventListener("submit", (event) => {
  if (sent) event.preventDefault();
  sent = true;
});
window.addEventListener("pageshow", () => {
  sent = false;
});

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
  // Enter on a focused link, button or other control already does what that control does.
  if (event.key === "Enter" && target instanceof Element && target.closest("a[href], button, summary")) return;
  const button = buttons.get(event.key.toLowerCase());
  if (!button) return;
  event.preventDefault();
  button.click();
});
