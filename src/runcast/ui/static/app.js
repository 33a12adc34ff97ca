// runcast dashboard: polls the local server's JSON and draws with the bundled plotly.js.
// Points are appended with Plotly.extendTraces (no redraw of what is already there); forecast
// bands are replaced when the server has a newer forecast.
"use strict";

const PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692"];
const POLL_MS = 1000;        // new points
const RUNS_MS = 2000;        // run list
const BAND_MS = 3000;        // forecast bands

// runs per page of the list: 50, or ?per_page=N in the page's address (1 to 500)
const PER_PAGE = Math.min(500, Math.max(1,
  parseInt(new URLSearchParams(location.search).get("per_page"), 10) || 50));

const state = {
  key: null,
  runs: [],                  // last /api/runs reply
  offset: 0,                 // the list's page: runs skipped, newest first
  total: 0,                  // runs that match the filter, in all
  selected: [],              // run ids, in the order they were picked
  series: {},                // run id -> {since, m, n, beta, idx: {raw, ema, lo95, lo80, med}}
  plotted: false,
};

function fmt(x) {
  if (x === null || x === undefined) return "—";
  return Number(x).toPrecision(4);
}

function colour(id) {
  return PALETTE[state.selected.indexOf(id) % PALETTE.length];
}

function rgba(hex, a) {
  const r = parseInt(hex.slice(1, 3), 16), g = parseInt(hex.slice(3, 5), 16),
    b = parseInt(hex.slice(5, 7), 16);
  return `rgba(${r},${g},${b},${a})`;
}

async function getJSON(url) {
  const res = await fetch(url, { cache: "no-store" });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

// ---- run list -----------------------------------------------------------------------------
function renderRuns() {
  const tbody = document.querySelector("#runs tbody");
  tbody.innerHTML = "";
  for (const r of state.runs) {
    const tr = document.createElement("tr");
    tr.dataset.run = r.id;
    const sel = state.selected.includes(r.id);
    if (sel) tr.classList.add("selected");
    // a run that is not running shows the forecast made part-way (the server's cut-off): say so
    const made = r.status !== "running" && r.forecast && r.forecast.made_at != null
      ? `, made at step ${r.forecast.made_at}` : "";
    const fc = r.forecast
      ? `${fmt(r.forecast.median)} <span class="muted">[${fmt(r.forecast.lo80)}, ${fmt(r.forecast.hi80)}] at step ${r.forecast.step}${made}</span>`
      : r.forecast_note
        // the reason there is no forecast, on the page (not only in a tooltip)
        ? `<span class="muted note">${escapeHTML(r.forecast_note)}</span>`
        : `<span class="muted">…</span>`;
    const sw = sel ? `<span class="swatch" style="background:${colour(r.id)}"></span>` : "";
    tr.innerHTML = `<td><input type="checkbox" ${sel ? "checked" : ""}></td>` +
      `<td>${sw}${escapeHTML(r.name)}</td><td><code>${escapeHTML(r.id)}</code></td>` +
      `<td class="status-${escapeHTML(r.status)}">${escapeHTML(r.status)}</td>` +
      `<td>${escapeHTML(r.last_step ?? "—")}</td>` +
      // one definition of what a run reached (its trend at the last step, as in the report);
      // the last raw point is labelled as such
      (r.reached != null
        ? `<td>${fmt(r.reached)} <span class="muted">reached · last point ${fmt(r.value)}</span></td>`
        : `<td>${fmt(r.value)} <span class="muted">last point</span></td>`) +
      `<td class="forecast">${fc}</td>`;
    if (r.forecast_note) tr.querySelector(".forecast").title = r.forecast_note;
    tr.querySelector("input").addEventListener("change", (e) => toggle(r.id, e.target.checked));
    tbody.appendChild(tr);
  }
}

function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// plotly reads trace names and titles as its own small HTML ("a<b>c" is drawn "ac", "&amp;"
// as "&"); its entities show a run's name or a metric key exactly as written
function plotlyText(s) {
  return String(s).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" }[c]));
}

function renderKeys() {
  const keys = new Set();
  for (const r of state.runs) for (const k of r.keys) if (k !== "lr") keys.add(k);
  const select = document.getElementById("key");
  const wanted = [...keys].sort();
  if (select.options.length === wanted.length &&
      [...select.options].every((o, i) => o.value === wanted[i])) return;
  select.innerHTML = wanted.map((k) => `<option value="${escapeHTML(k)}">${escapeHTML(k)}</option>`).join("");
  select.value = state.key;
}

async function refreshRuns() {
  // one page of the newest runs; the filter box narrows them by name on the server
  const filter = document.getElementById("filter").value.trim();
  const offset = state.offset;
  const q = new URLSearchParams({ limit: PER_PAGE, offset });
  if (filter) q.set("name", filter);
  const body = await getJSON(`/api/runs?${q}`);
  // a reply for a page or filter the user has since left is dropped, not drawn over the new one
  if (offset !== state.offset || filter !== document.getElementById("filter").value.trim()) return;
  if (body.total > 0 && offset >= body.total) {
    // runs were deleted or the filter narrowed under this page: show the last page there is
    state.offset = Math.floor((body.total - 1) / PER_PAGE) * PER_PAGE;
    return refreshRuns();
  }
  state.runs = body.runs;
  state.total = body.total;
  if (state.key === null) state.key = body.key;
  if (state.selected.length === 0 && state.runs.length > 0) {
    // start with the newest running run (or the newest run): what a user opens the page for
    const first = state.runs.find((r) => r.status === "running") || state.runs[0];
    await toggle(first.id, true);
  }
  renderKeys();
  renderRuns();
  renderPager();
  // before the store exists the reply says so: shown until training creates it
  document.getElementById("status").textContent =
    `${body.note || `${body.total} run(s)`} · updated ${new Date().toLocaleTimeString()}`;
}

// previous/next page of the run list, and which runs of how many this page shows
function renderPager() {
  const n = state.runs.length;
  document.getElementById("page-info").textContent = n === 0 ? "no runs" :
    `runs ${state.offset + 1}–${state.offset + n} of ${state.total} (newest first)`;
  document.getElementById("newer").disabled = state.offset === 0;
  document.getElementById("older").disabled = state.offset + n >= state.total;
  document.getElementById("pager").hidden = state.total <= PER_PAGE && state.offset === 0;
}

async function turnPage(delta) {
  state.offset = Math.max(0, state.offset + delta * PER_PAGE);
  await refreshRuns();
}

function showError(err) {
  document.getElementById("status").textContent = `error: ${err.message}`;
}

document.getElementById("newer").addEventListener("click", () => turnPage(-1).catch(showError));
document.getElementById("older").addEventListener("click", () => turnPage(1).catch(showError));
// a new filter starts again from its newest runs
document.getElementById("filter").addEventListener("input", () => {
  state.offset = 0;
  refreshRuns().catch(showError);
});

// ---- plot ---------------------------------------------------------------------------------
function layout() {
  return {
    margin: { t: 30, r: 20, b: 45, l: 60 },
    xaxis: { title: { text: "step" } },
    yaxis: { title: { text: plotlyText(state.key) } },
    legend: { orientation: "h", y: -0.2 },
    uirevision: "keep",      // keep the user's zoom across updates
  };
}

function ensurePlot() {
  if (!state.plotted) {
    Plotly.newPlot("curves", [], layout(), { responsive: true, displaylogo: false });
    state.plotted = true;
  }
}

function addRunTraces(id, name) {
  ensurePlot();
  const div = document.getElementById("curves");
  const c = colour(id);
  name = plotlyText(name);
  const base = div.data.length;
  const traces = [
    { x: [], y: [], mode: "lines", line: { color: rgba(c, 0.3), width: 1 }, name: `${name} (raw)` },
    { x: [], y: [], mode: "lines", line: { color: c, width: 2 }, name: `${name} (EMA)` },
    { x: [], y: [], fill: "toself", fillcolor: rgba(c, 0.12), line: { width: 0 }, hoverinfo: "skip", name: `${name} forecast 95%` },
    { x: [], y: [], fill: "toself", fillcolor: rgba(c, 0.25), line: { width: 0 }, hoverinfo: "skip", name: `${name} forecast 80%` },
    { x: [], y: [], mode: "lines", line: { color: c, dash: "dash" }, name: `${name} forecast median` },
  ];
  for (const t of traces) t.meta = id;
  Plotly.addTraces(div, traces);
  state.series[id] = { since: null, m: 0, n: 0, beta: 0.95, band: null,
    idx: { raw: base, ema: base + 1, b95: base + 2, b80: base + 3, med: base + 4 } };
}

function rebuildPlot() {
  // a run was removed or the metric changed: start over with the selected runs
  Plotly.purge("curves");
  state.plotted = false;
  state.series = {};
  ensurePlot();
  for (const id of state.selected) {
    const r = state.runs.find((x) => x.id === id);
    addRunTraces(id, r ? r.name : id);
  }
}

async function toggle(id, on) {
  if (on && !state.selected.includes(id)) {
    state.selected.push(id);
    const r = state.runs.find((x) => x.id === id);
    addRunTraces(id, r ? r.name : id);
    await pollCurves();
    await refreshBands();
  } else if (!on) {
    state.selected = state.selected.filter((x) => x !== id);
    rebuildPlot();
    await pollCurves();
    await refreshBands();
  }
  renderRuns();
}

// bias-corrected EMA, updated point by point (same definition as the report's)
function emaPush(s, v) {
  s.n += 1;
  s.m = s.beta * s.m + (1 - s.beta) * v;
  return s.m / (1 - Math.pow(s.beta, s.n));
}

async function pollCurves() {
  const div = document.getElementById("curves");
  for (const id of [...state.selected]) {
    const s = state.series[id];
    if (!s) continue;
    const q = new URLSearchParams({ key: state.key });
    if (s.since !== null) q.set("since_step", s.since);
    else q.set("max_points", 5000);  // first load of a long run: thinned, spikes kept
    let body;
    try {
      body = await getJSON(`/api/runs/${encodeURIComponent(id)}/curve?${q}`);
    } catch (err) {
      continue;  // e.g. the run has no such metric; its row still shows
    }
    if (body.step.length === 0) continue;
    if (s.since === null) s.beta = Math.min(0.99, Math.max(0, 1 - 40 / body.step.length));
    // a missing (NaN/inf) point is a gap in the raw line, never a line drawn across it; the
    // EMA skips it, as the report's does
    const xs = [], ys = [], xe = [], es = [];
    body.step.forEach((x, i) => {
      const v = body.value[i];
      xs.push(x); ys.push(v);
      if (v !== null) { xe.push(x); es.push(emaPush(s, v)); }
    });
    s.since = body.step[body.step.length - 1];
    if (state.series[id] === s) {
      Plotly.extendTraces(div, { x: [xs, xe], y: [ys, es] }, [s.idx.raw, s.idx.ema]);
    }
  }
}

async function refreshBands() {
  const div = document.getElementById("curves");
  const notes = [];
  try {
    await drawBands(div, notes);
  } finally {
    // a plotted run without a band says why, under the plot
    document.getElementById("notes").textContent = notes.join("  ");
  }
}

async function drawBands(div, notes) {
  for (const id of [...state.selected]) {
    const s = state.series[id];
    if (!s) continue;
    let b;
    try {
      b = await getJSON(`/api/runs/${encodeURIComponent(id)}/forecast?key=${encodeURIComponent(state.key)}`);
    } catch (err) {
      continue;
    }
    if (b.note) notes.push(`${(state.runs.find((r) => r.id === id) || { name: id }).name}: ${b.note}`);
    if (!b.step || state.series[id] !== s) continue;
    const stamp = `${b.cutoff_step}:${b.step.length}:${b.final.median}`;
    if (s.band === stamp) continue;
    s.band = stamp;
    const back = [...b.step].reverse();
    Plotly.restyle(div, {
      x: [b.step.concat(back), b.step.concat(back), b.step],
      y: [b.hi95.concat([...b.lo95].reverse()), b.hi80.concat([...b.lo80].reverse()), b.median],
    }, [s.idx.b95, s.idx.b80, s.idx.med]);
  }
}

function loop(fn, ms) {
  const tick = async () => {
    try { await fn(); } catch (err) { showError(err); }
    setTimeout(tick, ms);
  };
  tick();
}

document.getElementById("key").addEventListener("change", async (e) => {
  state.key = e.target.value;
  rebuildPlot();
  Plotly.relayout("curves", { "yaxis.title.text": plotlyText(state.key) });
  await pollCurves();
  await refreshBands();
});

// batch size (steps), noise scale (dashed) and measured CBS intervals of the selected runs that
// recorded them, on one log axis (report/_batch.py computes the same data for the report)
async function drawBatch() {
  const div = document.getElementById("batch");
  const traces = [];
  for (const id of [...state.selected]) {
    let b;
    try {
      b = await getJSON(`/api/runs/${encodeURIComponent(id)}/batch`);
    } catch (err) {
      continue;
    }
    if (b.note) continue;
    const name = plotlyText(b.name);
    traces.push({ x: b.batch.step, y: b.batch.value, name: `${name}: batch size`,
      mode: "lines", line: { shape: "hv", width: 2 } });
    traces.push({ x: b.noise_scale.step, y: b.noise_scale.value, name: `${name}: noise scale`,
      mode: "lines", line: { dash: "dash" } });
    const top = b.cbs.lo.map((lo, i) => (b.cbs.hi[i] === null ? lo : b.cbs.hi[i] - lo));
    traces.push({ x: b.cbs.step, y: b.cbs.lo, name: `${name}: CBS [lo, hi]`, mode: "markers",
      error_y: { type: "data", symmetric: false, array: top, arrayminus: b.cbs.lo.map(() => 0) } });
  }
  div.hidden = traces.length === 0;
  if (traces.length) {
    Plotly.react(div, traces, { title: "batch size and critical batch size",
      xaxis: { title: { text: "step" } }, yaxis: { type: "log", title: { text: "batch size" } },
      margin: { t: 40 } });
  }
}

loop(refreshRuns, RUNS_MS);
loop(pollCurves, POLL_MS);
loop(refreshBands, BAND_MS);
loop(drawBatch, BAND_MS);
