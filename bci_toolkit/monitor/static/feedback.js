// Participant feedback: a cursor (motor imagery, two classes) or bars (more classes), or
// highlighted targets (SSVEP), driven by the decoder's probabilities; the cue from the
// marker stream is shown with ?cue=1: with the toolkit's own paradigm (bci paradigm mi),
// a fixation cross, then the cue's arrow over it until the rest marker.
// This page sends only the documented `subscribe`.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token");
const fb = { decisions: 0, proba: null, position: 0.5, cue: null, mode: null, classes: [],
  phase: null, paradigm: false, cues: [] };
window.bciFeedback = fb;
const $ = (id) => document.getElementById(id);
let hello = null, cueTimer = null;

function isFrequency(c) { return /^\s*\d+(\.\d+)?\s*(hz)?\s*$/i.test(c); }

function onHello(h) {
  hello = h;
  fb.classes = h.classes || [];
  const freqLike = fb.classes.filter(isFrequency).length >= 2;
  fb.mode = params.get("mode") || (freqLike ? "ssvep" : "mi");
  if (fb.mode === "ssvep") {
    $("ssvep").hidden = false;
    $("ssvep").innerHTML = fb.classes.map((c, i) => `<div class="tgt" id="tgt-${i}" data-class="${c}">${c}</div>`).join("");
  } else {
    $("mi").hidden = fb.classes.length === 0;   // the monitor without a decoder: cues only
    $("bars").innerHTML = fb.classes.length > 2 ?
      fb.classes.map((c, i) => `<div class="bar" id="bar-${i}" data-class="${c}">${c}</div>`).join("") : "";
    $("track").hidden = fb.classes.length > 2;
    fb.classes.slice(0, 2).forEach((c, i) => { $(`target-${i}`).textContent = c; });
  }
  state.ws.send(JSON.stringify({ cmd: "subscribe", page: 0, view: "feedback" }));
}

function onDecision(d) {
  const p = d.p, thr = hello.threshold ?? 0.5;
  fb.decisions += 1; fb.proba = p;
  const best = p.indexOf(Math.max(...p));
  if (fb.mode === "ssvep") {
    p.forEach((v, i) => {
      const el = $(`tgt-${i}`);
      el.style.background = `rgba(63, 169, 245, ${v.toFixed(3)})`;
      el.classList.toggle("hit", i === best && v >= thr);
    });
  } else if (fb.classes.length > 2) {
    p.forEach((v, i) => {
      const el = $(`bar-${i}`);
      el.style.height = `${(100 * v).toFixed(1)}%`;
      el.classList.toggle("hit", i === best && v >= thr);
    });
  } else {
    // Two classes: the first pulls the cursor left, the second right (Graz / BCI2000 cursor).
    fb.position = 0.5 + 0.5 * (p[1] - p[0]);
    $("cursor").style.left = `${(100 * (0.07 + 0.86 * fb.position)).toFixed(2)}%`;
    $("cursor").dataset.position = fb.position.toFixed(4);
    [0, 1].forEach((i) => $(`target-${i}`).classList.toggle("hit", i === best && p[i] >= thr));
  }
}

// The paradigm's markers (bci_toolkit.paradigm.schedule): "fixation", the class, "rest".
const FIXATION = "fixation", REST = "rest";
const ARROWS = { left: "\u2190", right: "\u2192", feet: "\u2193", foot: "\u2193", down: "\u2193",
  hands: "\u2191", tongue: "\u2191", up: "\u2191" };

function logCue(label, phase) {
  fb.cues.push({ label, phase, at: Date.now() });
  if (fb.cues.length > 200) fb.cues.splice(0, fb.cues.length - 200);   // a bounded log
}

function showCue(label) {
  const i = fb.classes.indexOf(label);
  fb.phase = "cue";
  $("paradigm").hidden = false; $("cue").hidden = true;
  $("arrow").textContent = Object.hasOwn(ARROWS, label) ? ARROWS[label] : ""; $("arrow").dataset.class = label;
  $("cue-label").textContent = label;
  document.querySelectorAll(".target").forEach((el, k) => el.classList.toggle("cued", k === i));
  logCue(label, "cue");
}

function clearCue() {
  $("paradigm").hidden = true; $("arrow").textContent = ""; $("arrow").dataset.class = "";
  $("cue-label").textContent = "";
  document.querySelectorAll(".target").forEach((el) => el.classList.remove("cued"));
}

function onMarker(m) {
  fb.cue = m.label;
  if (params.get("cue") !== "1") return;
  clearTimeout(cueTimer);
  if (m.label === FIXATION) {          // a new trial: the cross alone
    fb.paradigm = true; fb.phase = "fixation";
    document.body.classList.add("paradigm");
    clearCue(); $("paradigm").hidden = false; $("cue").hidden = true;
    logCue(m.label, "fixation");
  } else if (m.label === REST) {       // imagery over: the screen clears
    fb.phase = "rest"; clearCue(); $("cue").hidden = true;
    logCue(m.label, "rest");
  } else if (fb.paradigm || Object.hasOwn(ARROWS, m.label) || fb.classes.includes(m.label)) {
    showCue(m.label);                  // stays until the rest marker
    // Cues of another program may come without rest markers: clear them after 4 s.
    if (!fb.paradigm) cueTimer = setTimeout(clearCue, 4000);
  } else {                             // any other marker: its label, for 3 s
    $("cue").hidden = false; $("cue").textContent = m.label;
    cueTimer = setTimeout(() => { $("cue").hidden = true; }, 3000);
  }
}

const state = { ws: null };
function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${token ? "?token=" + encodeURIComponent(token) : ""}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => { $("status").textContent = "connected"; };
  ws.onclose = () => { $("status").textContent = "disconnected, retrying…"; setTimeout(connect, 1000); };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "hello") onHello(msg);
    if (msg.type !== "frame") return;
    (msg.markers || []).forEach(onMarker);
    (msg.decisions || []).forEach(onDecision);
  };
}
connect();
