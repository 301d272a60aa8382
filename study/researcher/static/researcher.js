// Live progress on the dashboard: poll the table's JSON endpoint and update the cells marked
// data-k (a file, not inline code: the app's Content-Security-Policy forbids inline scripts).
const table = document.querySelector("[data-progress-url]");

function show(cell, study) {
  const key = cell.dataset.k;
  const value = study[key];
  if (key === "median_rt_ms") cell.textContent = value == null ? "" : Math.round(value);
  else if (key === "catch_failures") cell.textContent = `${value} / ${study.catch_trials}`;
  else if (value !== undefined) cell.textContent = value;
}

async function refresh() {
  try {
    const resp = await fetch(table.dataset.progressUrl, { headers: { Accept: "application/json" } });
    if (!resp.ok) return;
    const data = await resp.json();
    for (const study of data.studies || [data]) {
      const row = table.querySelector(`[data-slug="${CSS.escape(study.slug)}"]`);
      if (row) row.querySelectorAll("[data-k]").forEach((cell) => show(cell, study));
    }
  } catch (err) {
    // keep the last figures; the next poll tries again
  }
}

if (table) setInterval(refresh, 5000);
