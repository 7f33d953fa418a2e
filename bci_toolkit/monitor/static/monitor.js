// bci-toolkit monitor page: receives frames over one WebSocket and redraws on animation
// frames only when something new came (so a hidden or slow tab costs the server nothing).
// The page sends only the documented commands: subscribe, mark_bad, unmark_bad.
"use strict";

const state = {
  hello: null, page: 0, channels: [], names: [], t: [], data: [], gain: 1, nextIdx: null, cols: [],
  rms: [], markers: [], decisions: [], dirty: false, ws: null,
  stats: { framesReceived: 0, redraws: 0, fps: 0, lastFrameAt: 0, tracesReceived: 0 },
};
window.bciMonitor = state.stats;
window.bciMonitorState = state;

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const url = `${proto}://${location.host}/ws${token ? "?token=" + encodeURIComponent(token) : ""}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => { $("status").textContent = "connected"; $("status").dataset.state = "open"; };
  ws.onclose = () => {
    $("status").textContent = "disconnected, retrying…"; $("status").dataset.state = "closed";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "hello") onHello(msg);
    else if (msg.type === "frame") onFrame(msg);
    else if (msg.type === "error") console.warn(msg.message);
  };
}

// ---- traces -----------------------------------------------------------------------
let tracePlot = null;

function onHello(h) {
  state.hello = h;
  $("stream").textContent = `${h.channels.length} ch @ ${h.sfreq} Hz (display ${h.display_rate.toFixed(0)} Hz)`;
  buildQualityHead();
  if (h.mode === "live") { $("live").hidden = false; buildProba(); }
  subscribe(state.page);
}

function subscribe(page) {
  const h = state.hello;
  state.page = Math.max(0, Math.min(page, h.n_pages - 1));
  $("pageinfo").textContent = `page ${state.page + 1}/${h.n_pages}`;
  state.t = []; state.data = []; state.channels = []; state.rms = [];
  send({ cmd: "subscribe", page: state.page });
}

function buildTracePlot(names) {
  if (tracePlot) tracePlot.destroy();
  const n = names.length;
  const series = [{}];
  names.forEach((name, i) => series.push({ label: name, stroke: COLORS[i % COLORS.length], width: 1, points: { show: false } }));
  const el = $("traces");
  tracePlot = new uPlot({
    width: el.clientWidth || 800, height: Math.max(300, Math.min(900, 22 * n + 60)),
    legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false }, y: { auto: false, range: [-0.5, n + 0.5] } },
    axes: [{ label: "seconds before the newest sample", values: (u, vals) => vals.map((v) => (v - lastTime()).toFixed(1)) }, {
      splits: () => names.map((_, i) => n - i), values: (u, vals) => vals.map((v) => names[n - v] || ""),
      size: 70,
    }],
    series,
    hooks: { draw: [drawMarkers] },
  }, [[]].concat(names.map(() => [])), el);
}

function lastTime() { return state.t.length ? state.t[state.t.length - 1] : 0; }

function drawMarkers(u) {
  const ctx = u.ctx, [t0, t1] = [u.scales.x.min, u.scales.x.max];
  ctx.save();
  ctx.font = `${12 * devicePixelRatio}px sans-serif`;
  for (const m of state.markers) {
    if (m.t < t0 || m.t > t1) continue;
    const x = u.valToPos(m.t, "x", true);
    ctx.strokeStyle = "#e67e22"; ctx.lineWidth = 2 * devicePixelRatio;
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.fillStyle = "#e67e22"; ctx.fillText(m.label, x + 3 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio);
  }
  ctx.restore();
}

function onFrame(f) {
  const s = state.stats;
  s.framesReceived += 1; s.lastFrameAt = performance.now();
  if (f.traces && f.page === state.page) {
    if (state.channels.join() !== f.channels.join()) {
      state.channels = f.channels;
      state.names = f.channels.map((i) => state.hello.channels[i]);
      state.t = []; state.data = f.channels.map(() => []); state.nextIdx = null;
      buildTracePlot(state.names);
    }
    // Frames sent before a resubscription repeat samples already shown: skip those.
    const skip = state.nextIdx === null ? 0 : Math.max(0, state.nextIdx - f.traces.start);
    const tr = f.traces;
    s.tracesReceived += Math.max(0, tr.t.length - skip);
    for (let j = skip; j < tr.t.length; j++) state.t.push(tr.t[j]);
    tr.data.forEach((vals, i) => { for (let j = skip; j < vals.length; j++) state.data[i].push(vals[j]); });
    state.nextIdx = Math.max(state.nextIdx ?? 0, tr.start + tr.t.length);
    const keep = Math.ceil(state.hello.window_s * state.hello.display_rate);
    if (state.t.length > keep) {
      const cut = state.t.length - keep;
      state.t.splice(0, cut); state.data.forEach((d) => d.splice(0, cut));
    }
    state.dirty = true;
  }
  if (f.quality) onQuality(f.quality);
  if (f.health && performance.now() - lastHealth >= 500) { lastHealth = performance.now(); onHealth(f.health); }
  if (f.markers) onMarkers(f.markers);
  if (f.decisions) onDecisions(f.decisions);
  if (f.latency) onLatency(f.latency);
}

function redraw() {
  if (state.dirty && tracePlot && state.t.length) {
    const n = state.channels.length, cols = [state.t];
    for (let i = 0; i < n; i++) {
      const d = state.data[i];
      let mean = 0; for (const v of d) mean += v; mean /= d.length || 1;
      // Per-channel scale: 3 RMS of the channel fills one row (gain buttons change it).
      const rms = state.rms[i] > 1e-6 ? state.rms[i] : 1;
      const k = state.gain / (6 * rms), off = n - i;
      let col = state.cols[i];
      if (!col || col.length !== d.length) col = state.cols[i] = new Float64Array(d.length);
      for (let j = 0; j < d.length; j++) col[j] = off + (d[j] - mean) * k;
      cols.push(col);
    }
    tracePlot.setData(cols);
    state.stats.redraws += 1;
    state.dirty = false;
  }
  if (probaPlot && state.probaDirty) { drawProba(); state.probaDirty = false; }
  requestAnimationFrame(redraw);
}

let fpsMark = { t: performance.now(), n: 0 };
setInterval(() => {
  const now = performance.now(), s = state.stats;
  s.fps = (s.redraws - fpsMark.n) / ((now - fpsMark.t) / 1000);
  fpsMark = { t: now, n: s.redraws };
  $("fps").textContent = `${s.fps.toFixed(0)} fps`;
}, 1000);

// ---- quality, health, markers ---------------------------------------------------------
function buildQualityHead() {
  const bands = state.hello.bands.map((b) => `<th>${b}</th>`).join("");
  $("quality").tHead.innerHTML = `<tr><th>channel</th><th>verdict</th><th>detail</th><th>RMS µV</th><th>line ×</th><th>drift µV/s</th>${bands}<th></th></tr>`;
}

function fmt(v, d = 1) { return v === null || v === undefined ? "–" : Number(v).toFixed(d); }

let lastTable = { at: 0, verdicts: "" };

function onQuality(qual) {
  state.rms = qual.metrics.rms.map((v) => v || 1);
  // Tables are rebuilt at most twice a second, at once when a verdict changes: a 64-row
  // table laid out five times a second would cost the page more than its traces.
  const verdicts = qual.verdict.join() + qual.marked.join(), now = performance.now();
  if (verdicts === lastTable.verdicts && now - lastTable.at < 500) return;
  lastTable = { at: now, verdicts };
  const marked = new Set(qual.marked);
  const rows = state.channels.map((ci, i) => {
    const name = state.hello.channels[ci], m = qual.metrics, b = qual.bands;
    const bands = state.hello.bands.map((k) => `<td>${fmt(b[k] && b[k][i], 1)}</td>`).join("");
    const isMarked = marked.has(name) ? 1 : 0;
    return `<tr data-channel="${escapeHtml(name)}" data-verdict="${qual.verdict[i]}" data-marked="${isMarked}">` +
      `<td>${escapeHtml(name)}</td><td class="verdict">${qual.verdict[i]}</td><td>${escapeHtml(qual.detail[i])}</td>` +
      `<td>${fmt(m.rms[i])}</td><td>${fmt(m.line_ratio[i], 2)}</td><td>${fmt(m.drift[i])}</td>${bands}` +
      `<td><button data-mark="${escapeHtml(name)}" data-bad="${isMarked}">${isMarked ? "unmark" : "mark bad"}</button></td></tr>`;
  });
  $("quality").tBodies[0].innerHTML = rows.join("");
  $("badcount").textContent = `(${qual.bad.length} of ${state.hello.channels.length} not ok` +
    (qual.bad.length ? ": " + qual.bad.slice(0, 12).map((b) => `${b[0]} ${b[1]}`).join(", ") : "") + ")";
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

document.addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-mark]");
  if (b) send({ cmd: b.dataset.bad === "1" ? "unmark_bad" : "mark_bad", channel: b.dataset.mark });
});
$("prev").onclick = () => subscribe(state.page - 1);
$("next").onclick = () => subscribe(state.page + 1);
$("gain-up").onclick = () => { state.gain *= 1.5; state.dirty = true; };
$("gain-down").onclick = () => { state.gain /= 1.5; state.dirty = true; };

let lastHealth = 0;

function onHealth(h) {
  const rows = [
    ["rate", `${fmt(h.measured_hz, 1)} Hz measured / ${h.nominal_hz} Hz nominal`],
    ["samples", h.n_samples], ["gaps", h.gaps], ["lost at source", h.lost_samples],
    ["late", h.late_samples], ["reconnections", h.reconnections], ["clock jumps", h.clock_jumps],
    ["stalls", h.stalls], ["dropped (overruns)", h.dropped_display], ["connected", h.connected ? "yes" : "no"],
  ];
  $("health").tBodies[0].innerHTML = rows.map(([k, v]) => `<tr data-key="${k}"><td>${k}</td><td>${v}</td></tr>`).join("");
}

function onMarkers(ms) {
  for (const m of ms) {
    state.markers.push(m);
    const li = document.createElement("li");
    li.textContent = `${m.t.toFixed(2)}  ${m.label}`;
    li.dataset.label = m.label;
    $("markers").prepend(li);
  }
  if (state.markers.length > 500) state.markers.splice(0, state.markers.length - 500);
  while ($("markers").children.length > 200) $("markers").lastChild.remove();
  state.dirty = true;
}

// ---- live: probabilities, commands, latency -----------------------------------------------
let probaPlot = null;

function buildProba() {
  const cls = state.hello.classes, el = $("proba");
  const series = [{}].concat(cls.map((c, i) => ({ label: c, stroke: COLORS[i % COLORS.length], width: 2 })));
  series.push({ label: "threshold", stroke: "#555", dash: [6, 4], width: 1 });
  probaPlot = new uPlot({
    width: el.clientWidth || 700, height: 220, scales: { x: { time: false }, y: { auto: false, range: [0, 1] } },
    axes: [{ label: "seconds before the newest decision", values: (u, vals) => vals.map((v) => (v - lastDecisionTime()).toFixed(1)) }, {}],
    series, hooks: { draw: [drawCuesAndCommands] },
  }, [[]].concat(series.slice(1).map(() => [])), el);
}

function lastDecisionTime() { const d = state.decisions; return d.length ? d[d.length - 1].t : 0; }

function drawCuesAndCommands(u) {
  drawMarkers(u);
  const ctx = u.ctx;
  ctx.save(); ctx.font = `bold ${12 * devicePixelRatio}px sans-serif`; ctx.fillStyle = "#111";
  for (const d of state.decisions) {
    if (!d.command || d.t < u.scales.x.min) continue;
    const x = u.valToPos(d.t, "x", true);
    ctx.fillText("▲" + d.command, x - 4, u.bbox.top + u.bbox.height - 4);
  }
  ctx.restore();
}

function drawProba() {
  const ds = state.decisions, xs = ds.map((d) => d.t), cols = [xs];
  state.hello.classes.forEach((_, i) => cols.push(ds.map((d) => d.p[i])));
  cols.push(ds.map(() => state.hello.threshold));
  probaPlot.setData(cols);
}

function lastCueBefore(t) {
  let cue = null;
  for (const m of state.markers) if (m.t <= t) cue = m; else break;
  return cue;
}

function onDecisions(ds) {
  for (const d of ds) {
    state.decisions.push(d);
    if (d.command) {
      const cue = lastCueBefore(d.t), tr = document.createElement("tr");
      const wrong = cue && cue.label !== d.label;
      tr.className = wrong ? "wrong" : "";
      tr.dataset.command = d.command;
      tr.innerHTML = `<td>${d.t.toFixed(2)}</td><td>${cue ? escapeHtml(cue.label) : "–"}</td><td>${escapeHtml(d.label)}</td><td>${escapeHtml(d.command)}</td>`;
      $("commands").tBodies[0].prepend(tr);
      while ($("commands").tBodies[0].children.length > 100) $("commands").tBodies[0].lastChild.remove();
    }
  }
  const span = 30, last = state.decisions.length ? state.decisions[state.decisions.length - 1].t : 0;
  while (state.decisions.length && state.decisions[0].t < last - span) state.decisions.shift();
  state.probaDirty = true;
}

function onLatency(l) {
  if (!l) return;
  $("latency-summary").textContent = `p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms (${l.n} decisions; ${l.edges[0].toFixed(1)}–${l.edges[l.edges.length - 1].toFixed(1)} ms)`;
  const max = Math.max(...l.counts, 1);
  $("latency").innerHTML = l.counts.map((c, i) => `<div title="${l.edges[i].toFixed(2)} ms: ${c}" style="height:${(100 * c / max).toFixed(1)}%"></div>`).join("");
}

window.addEventListener("resize", () => {
  if (tracePlot) tracePlot.setSize({ width: $("traces").clientWidth, height: tracePlot.height });
  if (probaPlot) probaPlot.setSize({ width: $("proba").clientWidth, height: 220 });
});

connect();
requestAnimationFrame(redraw);
