// The staff training page: while a job is queued or running, ask the API every two seconds how it is
// doing and update its row (state, progress bar, one-line summary). When a job ends, reload the page,
// whose model versions table then shows the version it made.
const table = document.getElementById("jobs");
const POLL_MILLISECONDS = 2000;
const unfinished = new Set(["queued", "running"]);

function rows() {
  return Array.from(table.querySelectorAll("tr[data-job-id]"));
}

function update(row, job) {
  row.querySelector(".job-state").textContent = job.state_display;
  row.querySelector(".job-progress").textContent = job.progress_summary;
  const bar = row.querySelector("progress");
  if (job.fraction_done === null) bar.removeAttribute("value");
  else bar.value = job.fraction_done;
}

async function poll() {
  const watched = rows().filter((row) => unfinished.has(row.dataset.state));
  if (watched.length === 0) return;
  try {
    const response = await fetch(table.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.status === 401 || response.status === 403) return; // signed out: a reload shows the sign-in
    if (response.ok) {
      const jobs = new Map((await response.json()).results.map((job) => [String(job.id), job]));
      for (const row of watched) {
        const job = jobs.get(row.dataset.jobId);
        if (!job) continue;
        update(row, job);
        if (!unfinished.has(job.state)) {
          window.location.reload();
          return;
        }
      }
    }
  } catch (error) {
    // The server restarting, or the network: try again at the next tick.
  }
  window.setTimeout(poll, POLL_MILLISECONDS);
}

if (table) window.setTimeout(poll, POLL_MILLISECONDS); // no jobs, no table: nothing to follow
