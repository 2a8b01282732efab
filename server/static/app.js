// The moodmusic web page: a valence/arousal pad -> POST /v1/clips -> play, mel image, heard mood, narration;
// and an Analyze tab -> POST /v1/analyze. Plain JS, no build step; it talks to the same API as any client.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { valence: 0.6, arousal: -0.6, moods: [], objectUrls: [] };

// --- API: every call carries the key when one is entered (audio and images too, fetched as blobs) ---
function headers() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    const retry = response.headers.get("Retry-After");
    throw new Error(`${response.status}: ${detail}${retry ? ` (retry in ${retry} s)` : ""}`);
  }
  return response;
}

async function blobUrl(path) {
  const url = URL.createObjectURL(await (await api(path)).blob());
  state.objectUrls.push(url);
  return url;
}

function setStatus(id, text, error = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", error);
}

// --- the pad ---------------------------------------------------------------------------------------
const pad = $("pad");
const ctx = pad.getContext("2d");
const MARGIN = 18;
const toX = (v) => MARGIN + ((v + 1) / 2) * (pad.width - 2 * MARGIN);
const toY = (a) => pad.height - MARGIN - ((a + 1) / 2) * (pad.height - 2 * MARGIN);
const fromX = (x) => Math.max(-1, Math.min(1, ((x - MARGIN) / (pad.width - 2 * MARGIN)) * 2 - 1));
const fromY = (y) => Math.max(-1, Math.min(1, ((pad.height - MARGIN - y) / (pad.height - 2 * MARGIN)) * 2 - 1));

function nearestMood(v, a) {
  let best = null;
  for (const m of state.moods) {
    const d = (m.valence - v) ** 2 + (m.arousal - a) ** 2;
    if (!best || d < best.d) best = { name: m.name, d };
  }
  return best;
}

function drawPad() {
  ctx.clearRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#3a3e4c";
  ctx.beginPath();
  ctx.moveTo(toX(-1), toY(0)); ctx.lineTo(toX(1), toY(0));
  ctx.moveTo(toX(0), toY(-1)); ctx.lineTo(toX(0), toY(1));
  ctx.stroke();
  ctx.strokeRect(toX(-1), toY(1), toX(1) - toX(-1), toY(-1) - toY(1));
  ctx.fillStyle = "#6a6e80";
  ctx.font = "11px system-ui";
  ctx.textAlign = "right";  // axis names where no named mood sits: left of the arousal axis, under the valence axis
  ctx.fillText("energetic ↑", toX(0) - 5, toY(1) + 12);
  ctx.fillText("pleasant →", toX(1) - 4, toY(0) + 14);
  ctx.textAlign = "left";
  for (const m of state.moods) {
    ctx.fillStyle = "#8a8ea0";
    ctx.beginPath(); ctx.arc(toX(m.valence), toY(m.arousal), 3, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#b8bccb";
    ctx.fillText(m.name, toX(m.valence) + 5, toY(m.arousal) + 4);
  }
  ctx.fillStyle = "#e0a040";
  ctx.beginPath(); ctx.arc(toX(state.valence), toY(state.arousal), 7, 0, 2 * Math.PI); ctx.fill();
  const near = nearestMood(state.valence, state.arousal);
  const sign = (x) => (x >= 0 ? "+" : "") + x.toFixed(2);
  $("pad-readout").textContent = `valence ${sign(state.valence)}, arousal ${sign(state.arousal)}` + (near ? ` (near ${near.name})` : "");
}

pad.addEventListener("click", (event) => {
  const box = pad.getBoundingClientRect();
  const x = ((event.clientX - box.left) * pad.width) / box.width;
  const y = ((event.clientY - box.top) * pad.height) / box.height;
  state.valence = Math.round(fromX(x) * 100) / 100;
  state.arousal = Math.round(fromY(y) * 100) / 100;
  const near = nearestMood(state.valence, state.arousal);
  if (near && Math.sqrt(near.d) < 0.06) {  // a click on a named mood takes its exact point
    const m = state.moods.find((m) => m.name === near.name);
    state.valence = m.valence; state.arousal = m.arousal;
  }
  drawPad();
});

// --- results ---------------------------------------------------------------------------------------
function bar(container, label, value, { signed = false, cls = "" } = {}) {
  const row = document.createElement("div");
  row.className = "bar-label"; row.textContent = label;
  const track = document.createElement("div");
  track.className = "track" + (signed ? " signed" : "");
  const fill = document.createElement("div");
  fill.className = `fill bar ${cls}`;
  if (signed) {
    const width = Math.abs(value) * 50;
    fill.style.left = value >= 0 ? "50%" : `${50 - width}%`;
    fill.style.width = `${width}%`;
    fill.classList.add(value >= 0 ? "pos" : "neg");
  } else {
    fill.style.left = "0"; fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  }
  track.appendChild(fill);
  const number = document.createElement("div");
  number.className = "value"; number.textContent = signed ? value.toFixed(2) : `${Math.round(value * 100)}%`;
  container.append(row, track, number);
}

function group(container, title) {
  const g = document.createElement("div");
  g.className = "group"; g.textContent = title;
  container.appendChild(g);
}

function showHeard(container, heard, asked) {
  container.replaceChildren();
  group(container, asked ? "mood (asked → heard)" : "mood");
  if (asked) {
    bar(container, "valence asked", asked.valence, { signed: true });
    bar(container, "arousal asked", asked.arousal, { signed: true });
  }
  bar(container, "valence", heard.valence, { signed: true });
  bar(container, "arousal", heard.arousal, { signed: true });
  group(container, `quadrant: ${heard.quadrant}`);
  for (const [name, p] of Object.entries(heard.quadrants)) bar(container, name, p);
  group(container, `moods: mostly ${heard.primary_mood}`);
  for (const [name, p] of Object.entries(heard.moods)) bar(container, name, p);
}

function showNarration(prefix, narration) {
  $(`${prefix}narrative`).textContent = narration ? narration.narrative : "";
  const list = $(`${prefix}recommendations`);
  list.replaceChildren(...(narration ? narration.recommendations : []).map((r) => {
    const li = document.createElement("li"); li.textContent = r; return li;
  }));
  if ($(`${prefix}visual-prompt`)) $(`${prefix}visual-prompt`).textContent = narration ? `Picture: ${narration.visual_prompt}` : "";
}

function timingsText(timings, cached) {
  const parts = Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(2)} s`);
  return (cached ? "from the store; made in: " : "") + parts.join(" · ");
}

function releaseObjectUrls() {
  for (const url of state.objectUrls) URL.revokeObjectURL(url);
  state.objectUrls = [];
}

// --- generate --------------------------------------------------------------------------------------
$("generate").addEventListener("click", async () => {
  const button = $("generate");
  button.disabled = true;
  setStatus("status", "composing…");
  try {
    const body = {
      valence: state.valence, arousal: state.arousal,
      duration: Number($("duration").value), seed: Number($("seed").value), loop: $("loop").checked,
      verify: true, narrate: true,
    };
    const clip = await (await api("/v1/clips", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    })).json();
    releaseObjectUrls();
    const [audioUrl, melUrl] = await Promise.all([blobUrl(clip.audio_url), blobUrl(clip.mel_url)]);
    const player = $("player");
    player.src = audioUrl;
    player.loop = clip.loop;
    $("mel").src = melUrl;
    showHeard($("heard-bars"), clip.heard, clip.asked);
    $("distance").textContent = clip.distance != null ? `— distance to the mood asked: ${clip.distance.toFixed(2)}` : "";
    showNarration("", clip.narration);
    $("timings").textContent = timingsText(clip.timings, clip.cached);
    $("clip-result").hidden = false;
    setStatus("status", `clip ${clip.id.slice(0, 8)}… (${clip.duration} s${clip.cached ? ", from the store" : ""})`);
    player.play().catch(() => setStatus("status", "press play to listen"));  // autoplay may be blocked
  } catch (error) {
    setStatus("status", error.message, true);
  } finally {
    button.disabled = false;
  }
});

// --- analyze ---------------------------------------------------------------------------------------
function drawTimeline(timeline) {
  const canvas = $("timeline");
  const c = canvas.getContext("2d");
  c.clearRect(0, 0, canvas.width, canvas.height);
  if (!timeline.length) return;
  const end = timeline[timeline.length - 1].end || 1;
  const x = (t) => 10 + (t / end) * (canvas.width - 20);
  const y = (v) => canvas.height / 2 - v * (canvas.height / 2 - 10);
  c.strokeStyle = "#3a3e4c"; c.beginPath(); c.moveTo(10, y(0)); c.lineTo(canvas.width - 10, y(0)); c.stroke();
  for (const [key, color] of [["valence", "#58b87a"], ["arousal", "#e0a040"]]) {
    c.strokeStyle = color; c.lineWidth = 2; c.beginPath();
    timeline.forEach((w, i) => { const px = x((w.start + w.end) / 2); i ? c.lineTo(px, y(w[key])) : c.moveTo(px, y(w[key])); });
    c.stroke();
    c.fillStyle = color;  // a dot per window: a short file has a single window and no line
    for (const w of timeline) { c.beginPath(); c.arc(x((w.start + w.end) / 2), y(w[key]), 3.5, 0, 2 * Math.PI); c.fill(); }
    c.fillStyle = color; c.fillText(key, key === "valence" ? 12 : 62, 14);
  }
}

$("analyze").addEventListener("click", async () => {
  const file = $("upload").files[0];
  if (!file) { setStatus("analyze-status", "choose an audio file first", true); return; }
  const button = $("analyze");
  button.disabled = true;
  setStatus("analyze-status", "listening…");
  try {
    const form = new FormData();
    form.append("file", file);
    const result = await (await api("/v1/analyze", { method: "POST", body: form })).json();
    showHeard($("analyze-bars"), result.heard, null);
    drawTimeline(result.heard.timeline);
    showNarration("analyze-", result.narration);
    $("analyze-timings").textContent = timingsText(result.timings, false);
    $("analyze-result").hidden = false;
    setStatus("analyze-status", `${file.name}: ${result.analyzed_seconds.toFixed(1)} s analysed${result.truncated ? " (the start of a longer file)" : ""}`);
  } catch (error) {
    setStatus("analyze-status", error.message, true);
  } finally {
    button.disabled = false;
  }
});

// --- tabs and start-up -----------------------------------------------------------------------------
for (const name of ["generate", "analyze"]) {
  $(`tab-${name}`).addEventListener("click", () => {
    for (const other of ["generate", "analyze"]) {
      $(`tab-${other}`).classList.toggle("active", other === name);
      $(`tab-${other}`).setAttribute("aria-selected", String(other === name));
      $(`panel-${other}`).hidden = other !== name;
    }
  });
}

$("api-key").value = localStorage.getItem("moodmusic-api-key") || "";
$("api-key").addEventListener("change", () => { localStorage.setItem("moodmusic-api-key", $("api-key").value.trim()); loadMoods(); });

async function loadMoods() {
  try {
    state.moods = (await (await api("/v1/moods")).json()).moods;
  } catch (error) {
    setStatus("status", `named moods unavailable: ${error.message}`, true);
  }
  drawPad();
}
drawPad();
loadMoods();
