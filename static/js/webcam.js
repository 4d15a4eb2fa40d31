// The webcam page: a live preview with each face's expression drawn over it, and a button that
// sends one frame through the upload form.
//
// Live mode sends small frames (LIVE_WIDTH wide) to POST /api/v1/predict/, which reads them and
// stores nothing, one request at a time, and draws the answer's boxes; a summary in words goes to a
// polite live region about once a second, for screen readers.
//
// The frame goes out as a JPEG in the form's own file field, by a normal form submission, so the
// server treats it exactly as an uploaded photo (with source=webcam) and answers with the same
// result page, or the same error messages.

const JPEG_QUALITY = 0.92;
const LIVE_WIDTH = 320;
const LIVE_JPEG_QUALITY = 0.8;
const SUMMARY_MILLISECONDS = 1000;

// What the person can do about each reason getUserMedia gives for not starting the camera.
const REASONS = {
  NotAllowedError:
    "Camera access is blocked for this site. Allow the camera in your browser's site settings, then reload this page.",
  SecurityError:
    "Camera access is blocked for this site. Allow the camera in your browser's site settings, then reload this page.",
  NotFoundError: "No camera was found. Connect one, then reload this page.",
  OverconstrainedError: "No camera was found. Connect one, then reload this page.",
  NotReadableError:
    "The camera could not be started: another application may be using it. Close it, then reload this page.",
  AbortError:
    "The camera could not be started: another application may be using it. Close it, then reload this page.",
};
const NO_CAMERA_API_INSECURE =
  "Browsers offer the camera only to secure pages: open this site over https (or on localhost) to use your webcam.";
const NO_CAMERA_API = "This browser cannot use a camera from a web page.";
const UNKNOWN_FAILURE = "The camera could not be started.";

const page = document.querySelector("[data-webcam]");
const preview = page.querySelector("[data-webcam-preview]");
const stage = page.querySelector("[data-webcam-stage]");
const status = page.querySelector("[data-webcam-status]");
const problem = page.querySelector("[data-webcam-problem]");
const problemReason = page.querySelector("[data-webcam-problem-reason]");
const form = page.querySelector("[data-webcam-form]");
const imageInput = form.querySelector("input[type=file]");
const captureButton = form.querySelector("[data-webcam-capture]");
const alternative = page.querySelector("[data-webcam-alternative]");
const boxes = page.querySelector("[data-webcam-boxes]");
const liveToggle = page.querySelector("[data-webcam-live-toggle]");
const liveSummary = page.querySelector("[data-webcam-live-summary]");
const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
const PREDICT_URL = "/api/v1/predict/";

let live = false;
let reading = false; // a readLive loop is running
let lastSummaryAt = 0;

function showProblem(reason) {
  stage.hidden = true;
  form.hidden = true;
  alternative.hidden = true;
  status.textContent = "";
  problemReason.textContent = reason;
  problem.hidden = false;
  page.dataset.webcamState = "unavailable";
}

function stopCamera() {
  const stream = preview.srcObject;
  if (stream) {
    for (const track of stream.getTracks()) track.stop();
  }
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showProblem(window.isSecureContext ? NO_CAMERA_API : NO_CAMERA_API_INSECURE);
    return;
  }
  status.textContent = "Starting the camera…";
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (error) {
    showProblem(REASONS[error.name] || `${UNKNOWN_FAILURE} (${error.name})`);
    return;
  }
  preview.srcObject = stream;
  stage.hidden = false;
  // Ended by the browser or the device (unplugged, revoked), not by stopCamera().
  stream.getVideoTracks()[0].addEventListener("ended", () => {
    showProblem("The camera was turned off or disconnected. Reload this page to start it again.");
  });
  try {
    await preview.play();
  } catch (error) {
    stopCamera();
    showProblem(`${UNKNOWN_FAILURE} (${error.name})`);
    return;
  }
  status.textContent = "The camera is on. Take a photo when you are ready.";
  captureButton.disabled = false;
  page.dataset.webcamState = "live";
  liveToggle.disabled = false;
  setLive(true);
}

function setLive(on) {
  live = on;
  liveToggle.setAttribute("aria-pressed", String(on));
  liveToggle.textContent = on ? "Pause live reading" : "Resume live reading";
  page.dataset.webcamLive = on ? "on" : "paused";
  if (on) readLive();
  else boxes.replaceChildren();
}

function smallFrame() {
  const canvas = document.createElement("canvas");
  canvas.width = LIVE_WIDTH;
  canvas.height = Math.round((preview.videoHeight * LIVE_WIDTH) / preview.videoWidth);
  canvas.getContext("2d").drawImage(preview, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", LIVE_JPEG_QUALITY));
}

// Boxes come in the small frame's pixels; the preview shows the frame scaled to fit (object-fit:
// contain) and mirrored, so each box is scaled, offset and flipped the same way.
function drawBoxes(prediction) {
  const shown = Math.min(preview.clientWidth / prediction.width, preview.clientHeight / prediction.height);
  const left = (preview.clientWidth - prediction.width * shown) / 2;
  const top = (preview.clientHeight - prediction.height * shown) / 2;
  boxes.replaceChildren(
    ...prediction.faces.map((face) => {
      const [x, y, width, height] = face.box;
      const box = document.createElement("div");
      box.className = "webcam-box";
      box.style.left = `${preview.clientWidth - left - (x + width) * shown}px`;
      box.style.top = `${top + y * shown}px`;
      box.style.width = `${width * shown}px`;
      box.style.height = `${height * shown}px`;
      const tag = document.createElement("span");
      tag.textContent = `${face.number} · ${face.predicted_label} ${Math.round(face.confidence * 100)}%`;
      box.append(tag);
      return box;
    }),
  );
  // A tag sits above its box, reaching rightwards; where that would cross the stage's edge, which clips
  // it, it goes inside the box or reaches leftwards instead (a face at the top, or at the right).
  // Every tag is measured before any moves, so the page is laid out once, not once per tag.
  const stageEdges = stage.getBoundingClientRect();
  const tags = [...boxes.querySelectorAll(".webcam-box span")];
  const placements = tags.map((tag) => tag.getBoundingClientRect());
  tags.forEach((tag, index) => {
    tag.classList.toggle("webcam-tag-inside", placements[index].top < stageEdges.top);
    tag.classList.toggle("webcam-tag-leftwards", placements[index].right > stageEdges.right);
  });
}

function summarise(prediction) {
  if (performance.now() - lastSummaryAt < SUMMARY_MILLISECONDS) return;
  lastSummaryAt = performance.now();
  const faces = prediction.faces;
  liveSummary.textContent = faces.length
    ? `${faces.length} face${faces.length > 1 ? "s" : ""}: ` +
      faces.map((face) => `${face.number} ${face.predicted_label} ${Math.round(face.confidence * 100)}%`).join(", ")
    : "No face in view.";
}

// One request in flight at most: the next frame goes when the last answer is drawn.
async function readLive() {
  if (reading) return;
  reading = true;
  try {
    await readFrames();
  } finally {
    reading = false;
  }
}

async function readFrames() {
  while (live && page.dataset.webcamState === "live" && !document.hidden) {
    const frame = await smallFrame();
    const body = new FormData();
    body.append("image", frame, "frame.jpg");
    let prediction;
    try {
      const response = await fetch(PREDICT_URL, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
      });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      prediction = await response.json();
    } catch (error) {
      liveSummary.textContent = `Live reading stopped: ${error.message}.`;
      setLive(false);
      return;
    }
    if (!live) return;
    drawBoxes(prediction);
    summarise(prediction);
    page.dataset.webcamUpdates = String(Number(page.dataset.webcamUpdates || 0) + 1);
  }
}

liveToggle.addEventListener("click", () => setLive(!live));
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && live) readLive();
});

function frameAsJpeg() {
  const canvas = document.createElement("canvas");
  canvas.width = preview.videoWidth;
  canvas.height = preview.videoHeight;
  // The preview is mirrored like a looking glass; the photo is drawn as the camera sees it.
  canvas.getContext("2d").drawImage(preview, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) => {
    canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error("The frame could not be encoded."))),
      "image/jpeg",
      JPEG_QUALITY,
    );
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (captureButton.disabled || !preview.videoWidth) return;
  captureButton.disabled = true;
  status.textContent = "Sending the photo…";
  let blob;
  try {
    blob = await frameAsJpeg();
  } catch (error) {
    status.textContent = error.message;
    captureButton.disabled = false;
    return;
  }
  const files = new DataTransfer();
  files.items.add(new File([blob], "webcam.jpg", { type: "image/jpeg" }));
  imageInput.files = files.files;
  setLive(false);
  preview.pause();
  stopCamera();
  page.dataset.webcamState = "sending";
  form.submit();
});

// Coming back with the Back button restores the page from the cache with the camera off: start it again.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});
window.addEventListener("pagehide", stopCamera);

startCamera();
