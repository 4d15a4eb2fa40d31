// The upload page, for several photos at once: choose them together or drop them on the form, and
// each goes to POST /api/v1/captures/ on its own, one after the other, with a line in a list saying
// how it went (a link to its result, or why it was refused). One refused photo does not stop the
// others. Without this script the form uploads one photo, as a plain form.

const form = document.querySelector("[data-upload-form]");
const input = form.querySelector("input[type=file]");
const list = document.querySelector("[data-upload-list]");
const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
const source = form.querySelector("[name=source]");

input.multiple = true;
form.querySelector("[data-upload-batch-hint]").hidden = false;

function line(file) {
  const item = document.createElement("li");
  item.textContent = `${file.name}: waiting`;
  list.append(item);
  return item;
}

async function send(file, item) {
  item.textContent = `${file.name}: sending…`;
  const body = new FormData();
  body.append("image", file, file.name);
  if (source && source.value) body.append("source", source.value);
  let response;
  try {
    response = await fetch(form.dataset.api, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    });
  } catch (error) {
    item.textContent = `${file.name}: not sent (${error.message}).`;
    item.dataset.state = "refused";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    const faces = answer.faces.length;
    const link = document.createElement("a");
    link.href = `/captures/${answer.id}/`;
    link.textContent = `${faces} face${faces === 1 ? "" : "s"} found`;
    item.replaceChildren(`${file.name}: `, link);
    item.dataset.state = "done";
  } else {
    const reason = (answer.image && answer.image[0]) || answer.detail || `the server answered ${response.status}`;
    item.textContent = `${file.name}: refused. ${reason}`;
    item.dataset.state = "refused";
  }
}

async function sendAll(files) {
  list.hidden = false;
  const items = files.map(line);
  for (const [index, file] of files.entries()) await send(file, items[index]);
}

form.addEventListener("submit", (event) => {
  const files = Array.from(input.files);
  if (files.length < 2) return; // one photo: the plain form, and its result page
  event.preventDefault();
  sendAll(files);
  input.value = "";
});

form.addEventListener("dragover", (event) => {
  event.preventDefault();
  form.classList.add("dropping");
});
form.addEventListener("dragleave", () => form.classList.remove("dropping"));
form.addEventListener("drop", (event) => {
  event.preventDefault();
  form.classList.remove("dropping");
  const files = Array.from(event.dataTransfer.files);
  if (files.length) sendAll(files);
});
