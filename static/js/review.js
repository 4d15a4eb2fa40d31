// The review queue: each button that carries a data-key is pressed by that key (1-7 for an expression,
// Enter for "right", S to skip, U to undo). The buttons are ordinary form buttons: without this script,
// or with a screen reader, the page works by clicking them.
const buttons = new Map();
document.querySelectorAll("button[data-key]").forEach((button) => buttons.set(button.dataset.key.toLowerCase(), button));

// Once a key has pressed a button, the page is on its way to the next face: a second key would send the
// same face again, which the server takes for someone else's review of it. Reset when the page is shown
// again from the browser's history.
let pressed = false;
window.addEventListener("pageshow", () => {
  pressed = false;
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
  if (pressed) return;
  pressed = true;
  button.click();
});
