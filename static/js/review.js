// The review queue: each button that carries a data-key is pressed by that key (1-7 for an expression,
// Enter for "right", S to skip, U to undo). The buttons are ordinary form buttons: without this script,
// or with a screen reader, the page works by clicking them.
const buttons = new Map();
document.querySelectorAll("button[data-key]").forEach((button) => buttons.set(button.dataset.key.toLowerCase(), button));

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
  // Enter on a focused button already presses that button.
  if (event.key === "Enter" && target instanceof HTMLButtonElement) return;
  const button = buttons.get(event.key.toLowerCase());
  if (!button) return;
  event.preventDefault();
  button.click();
});
