// A video's page while the worker reads it: ask the API every two seconds how far it is, and update the
// state, the one-line summary and the progress bar. When the video is read (or has failed), reload the
// page, which then shows its emotion timeline (or the reason).
const section = document.querySelector("[data-video-progress]");
const POLL_MILLISECONDS = 2000;
const unfinished = new Set(["queued", "running"]);

async function poll() {
  try {
    const response = await fetch(section.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.status === 401 || response.status === 403 || response.status === 404) return; // signed out, or deleted
    if (response.ok) {
      const video = await response.json();
      if (!unfinished.has(video.state)) {
        window.location.reload();
        return;
      }
      section.querySelector("[data-video-state]").textContent = video.state_display;
      section.querySelector("[data-video-summary]").textContent = video.progress_summary;
      section.querySelector("progress").value = video.fraction_done;
    }
  } catch (error) {
    // The server restarting, or the network: try again at the next tick.
  }
  window.setTimeout(poll, POLL_MILLISECONDS);
}

if (section) window.setTimeout(poll, POLL_MILLISECONDS);
