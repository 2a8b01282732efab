// The moodmusic web page: a valence/arousal pad -> POST /v1/clips -> play, mel image, heard mood, narration;
// an Analyze tab -> POST /v1/analyze; and a Live tab -> WS /v1/stream, played gap-free with the Web Audio API
// while the pad steers the mood. Plain JS, no build step; it talks to the same API as any client.
"use strict";

const $ = (id) => document.getElementById(id);
// valence/arousal: the pad's point (the mood asked for); playing: the mood of the live chunk heard now, or null.
const state = { valence: 0.6, arousal: -0.6, moods: [], objectUrls: [], playing: null };

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
  if (state.playing) {  // live: a line from the mood heard now to the one asked for shows the glide still to go
    const [px, py] = [toX(state.playing.valence), toY(state.playing.arousal)];
    ctx.strokeStyle = "#5ab0d8"; ctx.lineWidth = 1;
    ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(px, py); ctx.lineTo(toX(state.valence), toY(state.arousal)); ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.fillStyle = "#e0a040";
  ctx.beginPath(); ctx.arc(toX(state.valence), toY(state.arousal), 7, 0, 2 * Math.PI); ctx.fill();
  if (state.playing) {
    ctx.strokeStyle = "#5ab0d8"; ctx.lineWidth = 2.5;
    ctx.beginPath(); ctx.arc(toX(state.playing.valence), toY(state.playing.arousal), 10, 0, 2 * Math.PI); ctx.stroke();
    ctx.lineWidth = 1;
  }
  const near = nearestMood(state.valence, state.arousal);
  $("pad-readout").textContent = `valence ${withSign(state.valence)}, arousal ${withSign(state.arousal)}` + (near ? ` (near ${near.name})` : "");
  pad.dataset.valence = state.valence;  // for scripts/webpage_check.py
  pad.dataset.arousal = state.arousal;
}

function withSign(x) { return (x >= 0 ? "+" : "") + x.toFixed(2); }

// Whoever cares about the pad's point (the live stream) registers here; the pad knows nothing about them.
const padListeners = [];

function pickAt(event) {
  const box = pad.getBoundingClientRect();
  const x = ((event.clientX - box.left) * pad.width) / box.width;
  const y = ((event.clientY - box.top) * pad.height) / box.height;
  let valence = Math.round(fromX(x) * 100) / 100;
  let arousal = Math.round(fromY(y) * 100) / 100;
  const near = nearestMood(valence, arousal);
  if (near && Math.sqrt(near.d) < 0.06) {  // a point on a named mood takes its exact point
    const m = state.moods.find((m) => m.name === near.name);
    valence = m.valence; arousal = m.arousal;
  }
  if (valence === state.valence && arousal === state.arousal) return;  // moves within one 0.01 step: nothing new
  state.valence = valence; state.arousal = arousal;
  drawPad();
  for (const listener of padListeners) listener();
}

// Pointer events cover mouse, pen and touch; capturing the pointer keeps a drag going when it leaves the pad.
let dragging = false;
pad.addEventListener("pointerdown", (event) => {
  dragging = true;
  pad.setPointerCapture(event.pointerId);
  pickAt(event);
});
pad.addEventListener("pointermove", (event) => { if (dragging) pickAt(event); });
for (const type of ["pointerup", "pointercancel"]) pad.addEventListener(type, () => { dragging = false; });

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

// --- live: WS /v1/stream ---------------------------------------------------------------------------
// Protocol (docs/games.md, "The live stream"): after {"type": "start"} the server answers "started", then
// for every chunk a JSON header {"type": "chunk", sequence, samples, valence, arousal, ...} followed at once
// by one binary message of `samples` little-endian int16 at 22,050 Hz, about 0.5 s each, never more than
// its buffer (1.5 s) ahead of real time.
const LEAD_S = 0.15;           // a chunk that cannot follow the previous one (the first, or after an underrun)
                               // starts this far ahead of the clock, so it is never scheduled in the past
const MOOD_INTERVAL_MS = 100;  // a drag fires pointermove at 60+ Hz; ~10 mood messages a second is plenty
const BUFFER_FULL_S = 3.0;     // full scale of the buffer bar: the server's default keeps ~2 s ahead (its 1.5 s
                               // buffer, the chunk it sends early, and our lead)

const live = {
  socket: null,            // the WebSocket while a stream runs
  audio: null,             // its AudioContext (one per stream: closing it silences everything scheduled)
  sampleRate: 22050,       // from the "started" message
  header: null,            // a chunk header waiting for its samples
  nextTime: 0,             // AudioContext time at which the next chunk starts
  scheduled: [],           // {start, end, header} of the chunks not yet played out, oldest first
  playingSequence: null,   // the chunk heard now
  chunks: 0, expected: 0, gaps: 0, underruns: 0, moodMessages: 0,
  sentMood: null, lastMoodAt: -Infinity, moodTimer: null, ticker: null, paused: false,
};
const liveInfo = $("live-info");

function setLiveState(name) {  // idle | connecting | playing | paused | stopped
  liveInfo.dataset.state = name;
  const running = name === "connecting" || name === "playing" || name === "paused";
  $("live-start").textContent = running ? "Stop" : "Start";
  $("live-pause").disabled = !(name === "playing" || name === "paused");
  $("live-pause").textContent = name === "paused" ? "Resume" : "Pause";
}

function streamUrl() {
  const key = $("api-key").value.trim();
  // Browsers cannot set an Authorization header on a WebSocket, so the key travels as ?token= (server/stream.py).
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream` + (key ? `?token=${encodeURIComponent(key)}` : "");
}

function newAudioContext() {
  // A context at the stream's own rate plays each chunk sample for sample, so joins stay exact; the browser
  // resamples the whole output once. Fall back to the device rate where a rate cannot be chosen.
  try { return new AudioContext({ sampleRate: live.sampleRate, latencyHint: "playback" }); } catch (_) { return new AudioContext(); }
}

function startLive() {
  $("player").pause();  // one music at a time
  live.audio = newAudioContext();  // made inside the click: browsers only let a user gesture start audio
  Object.assign(live, { header: null, nextTime: 0, scheduled: [], playingSequence: null, chunks: 0, expected: 0, gaps: 0,
    underruns: 0, moodMessages: 0, sentMood: null, lastMoodAt: -Infinity, paused: false });
  for (const key of ["sequence", "valence", "arousal", "playingSequence"]) delete liveInfo.dataset[key];  // the last stream's
  liveInfo.dataset.chunks = 0;
  const socket = new WebSocket(streamUrl());
  socket.binaryType = "arraybuffer";
  live.socket = socket;
  // Events of a socket that was stopped meanwhile (Stop, then Start again) are ignored.
  socket.onopen = () => {
    live.sentMood = { valence: state.valence, arousal: state.arousal };
    socket.send(JSON.stringify({ type: "start", valence: state.valence, arousal: state.arousal, seed: Number($("live-seed").value) || 0 }));
  };
  socket.onmessage = (event) => { if (socket === live.socket) onLiveMessage(event.data); };
  socket.onclose = (event) => { if (socket === live.socket) onLiveClosed(event); };
  live.ticker = setInterval(showLive, 100);
  setLiveState("connecting");
  setStatus("live-status", "connecting…");
  showLive();
}

function stopLive(status = "stopped") {
  const socket = live.socket;
  live.socket = null;
  if (socket) {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "close" }));
    socket.close(1000);
  }
  if (live.audio) live.audio.close();  // drops the chunks still scheduled at once
  live.audio = null;
  clearInterval(live.ticker);
  clearTimeout(live.moodTimer);
  live.moodTimer = null;
  state.playing = null;
  drawPad();
  setLiveState("stopped");
  setStatus("live-status", status, status !== "stopped");
  showLive();
}

function onLiveClosed(event) {  // the server ended the stream: a bad key (1008), all streams busy (1013), shutdown
  const why = event.reason || (event.code === 1000 ? "the server ended the stream" : `connection closed (code ${event.code})`);
  stopLive(`stream closed: ${why}`);
}

function onLiveMessage(data) {
  if (typeof data !== "string") {  // the samples of the header just received
    const header = live.header;
    live.header = null;
    if (header) playChunk(header, data);
    return;
  }
  const message = JSON.parse(data);
  if (message.type === "chunk") {
    live.header = message;
  } else if (message.type === "started") {
    live.sampleRate = message.sample_rate;
    setLiveState("playing");
    setStatus("live-status", `streaming ${message.sample_rate} Hz, ${(message.chunk_samples / message.sample_rate).toFixed(2)} s chunks`);
  } else if (message.type === "error") {  // a rejected message; the stream goes on (or closes, after a bad start)
    setStatus("live-status", message.message, true);
  }
}

function playChunk(header, bytes) {
  const audio = live.audio;
  const view = new DataView(bytes);
  const count = bytes.byteLength >> 1;
  const buffer = audio.createBuffer(1, count, live.sampleRate);
  const samples = buffer.getChannelData(0);
  for (let i = 0; i < count; i++) samples[i] = view.getInt16(2 * i, true) / 32768;  // explicit little-endian
  // Each chunk starts where the previous one ends, so playback has no gaps. Only when that moment has (all
  // but) passed -- the first chunk, or the network fell behind -- does it restart a lead ahead of the clock.
  const now = audio.currentTime;
  if (live.nextTime < now + 0.01) {
    if (live.chunks > 0 && !live.paused) live.underruns++;
    live.nextTime = now + LEAD_S;
  }
  const source = audio.createBufferSource();
  source.buffer = buffer;
  source.connect(audio.destination);
  source.start(live.nextTime);
  live.scheduled.push({ start: live.nextTime, end: live.nextTime + buffer.duration, header });
  live.nextTime += buffer.duration;
  if (header.sequence !== live.expected) live.gaps++;  // the server promises none; the page check asserts it
  live.expected = header.sequence + 1;
  live.chunks++;
  Object.assign(liveInfo.dataset, { chunks: live.chunks, sequence: header.sequence, valence: header.valence, arousal: header.arousal });
  showLive();
}

// What is heard now (the chunk under the AudioContext clock, not the newest received) and how much is buffered.
function showLive() {
  const audio = live.audio;
  const now = audio ? audio.currentTime : 0;
  while (live.scheduled.length && live.scheduled[0].end <= now) live.scheduled.shift();
  const current = live.scheduled.length && live.scheduled[0].start <= now ? live.scheduled[0].header : null;
  const sequence = current ? current.sequence : null;
  if (sequence !== live.playingSequence) {
    live.playingSequence = sequence;
    state.playing = current && { valence: current.valence, arousal: current.arousal };
    drawPad();
    if (current) {
      const near = nearestMood(current.valence, current.arousal);
      $("live-playing").textContent = `chunk #${current.sequence} playing, generated for valence ${withSign(current.valence)}, `
        + `arousal ${withSign(current.arousal)}` + (near ? ` (near ${near.name})` : "");
      liveInfo.dataset.playingSequence = current.sequence;
    } else {
      $("live-playing").textContent = live.socket ? "waiting for audio…" : "not playing";
    }
  }
  const ahead = audio ? Math.max(0, live.nextTime - now) : 0;
  const fill = $("live-buffer-fill");
  fill.style.width = `${Math.min(1, ahead / BUFFER_FULL_S) * 100}%`;
  fill.classList.toggle("low", live.chunks > 0 && ahead < 0.3);
  $("live-buffer-text").textContent = `${ahead.toFixed(1)} s`;
  $("live-received").textContent = live.chunks
    ? `received ${live.chunks} chunks (latest #${liveInfo.dataset.sequence}) · ${live.underruns} underruns · ${live.gaps} gaps · ${live.moodMessages} mood changes sent`
    : "";
  Object.assign(liveInfo.dataset, { buffered: ahead.toFixed(2), gaps: live.gaps, underruns: live.underruns, moodMessages: live.moodMessages,
    audio: audio ? audio.state : "closed" });
}

// Dragging on the pad steers the stream. Throttled: one message at once, then at most one per interval, and the
// last one always carries where the pad ended (a trailing send), so the stream never misses the final point.
function sendMoodSoon() {
  if (!live.socket || live.socket.readyState !== WebSocket.OPEN || live.moodTimer) return;  // no stream, or a send is due
  const wait = live.lastMoodAt + MOOD_INTERVAL_MS - performance.now();
  if (wait <= 0) sendMood();
  else live.moodTimer = setTimeout(() => { live.moodTimer = null; sendMood(); }, wait);
}

function sendMood() {
  const socket = live.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  if (live.sentMood && live.sentMood.valence === state.valence && live.sentMood.arousal === state.arousal) return;
  socket.send(JSON.stringify({ type: "mood", valence: state.valence, arousal: state.arousal, transition_s: Number($("live-transition").value) }));
  live.sentMood = { valence: state.valence, arousal: state.arousal };
  live.lastMoodAt = performance.now();
  live.moodMessages++;
  showLive();
}
padListeners.push(sendMoodSoon);

$("live-start").addEventListener("click", () => (live.socket ? stopLive() : startLive()));

$("live-pause").addEventListener("click", async () => {
  // The server stops generating while paused and its clock stops too; suspending the AudioContext freezes
  // ours, so the buffered audio waits instead of running out.
  const { socket, audio } = live;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  live.paused = !live.paused;
  setLiveState(live.paused ? "paused" : "playing");
  if (live.paused) {
    socket.send(JSON.stringify({ type: "pause" }));
    await audio.suspend();
  } else {
    await audio.resume();
    if (socket === live.socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resume" }));  // not stopped meanwhile
  }
});

$("live-transition").addEventListener("input", () => { $("live-transition-value").textContent = `${$("live-transition").value} s`; });

// --- tabs and start-up -----------------------------------------------------------------------------
const TABS = ["generate", "analyze", "live"];
for (const name of TABS) {
  $(`tab-${name}`).addEventListener("click", () => {
    for (const other of TABS) {
      $(`tab-${other}`).classList.toggle("active", other === name);
      $(`tab-${other}`).setAttribute("aria-selected", String(other === name));
      $(`panel-${other}`).hidden = other !== name;
    }
    // One pad element and one chosen mood for every tab that has a pad: move it into this tab's slot.
    const slot = $(`pad-slot-${name}`);
    if (slot) slot.appendChild($("pad-box"));
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
