// Live progress on the dashboard and a study's page: poll the table's JSON endpoint and update
// the cells marked data-k (a file, not inline code: the app's Content-Security-Policy forbids
// inline scripts).
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
    if (!data.studies) redrawCharts(data);
  } catch (err) {
    // keep the last figures; the next poll tries again
  }
}

// Study page: the SVG charts are drawn by the server; when the study's counts change, each
// chart is fetched again (a new query string), so a running study's pictures stay current.
const charts = document.getElementById("charts");

function redrawCharts(study) {
  if (!charts) return;
  const version = ["started", "completed", "returned", "screened_out", "responses"]
    .map((k) => study[k]).join("-");
  if (version === charts.dataset.version) return;
  charts.dataset.version = version;
  charts.querySelectorAll("img[data-chart]").forEach((img) => {
    const url = new URL(img.getAttribute("src"), window.location.href);
    url.searchParams.set("v", version);
    img.src = url.pathname + url.search;
  });
}

// ClickMe heat maps: page through the study's stimuli with Previous / Next.
const heatmap = document.getElementById("heatmap");

function setupHeatmap() {
  const items = [...heatmap.querySelectorAll("#heatmap-stimuli li")];
  const img = document.getElementById("heatmap-img");
  const caption = document.getElementById("heatmap-caption");
  let index = 0;
  const show = (step) => {
    index = (index + step + items.length) % items.length;
    const url = new URL(items[index].dataset.src, window.location.href);
    url.searchParams.set("v", charts.dataset.version);
    img.src = url.pathname + url.search;
    caption.textContent = `${index + 1} of ${items.length}: ${items[index].textContent}`;
  };
  document.getElementById("heatmap-prev").addEventListener("click", () => show(-1));
  document.getElementById("heatmap-next").addEventListener("click", () => show(1));
}

if (heatmap) setupHeatmap();
if (table) setInterval(refresh, 5000);
