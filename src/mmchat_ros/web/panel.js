// mmchat_ros operator panel: live state from the operator_panel node's event stream (/events), actions by
// POST /api/... . No libraries, nothing from the internet.
"use strict";

const $ = (id) => document.getElementById(id);
function fmt(value, digits = 2) {
  if (value === null || value === undefined) return "–";
  const text = Number(value).toFixed(digits);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;   // no "-0.00" for a value that rounds to zero
}

// ------------------------------------------------------------------------------------------------ state
function showFlight(f) {
  if (!f) return;
  const mode = $("mode");
  mode.textContent = f.mode;
  mode.className = "mode " + f.mode;
  $("armed").textContent = f.armed ? "armed" : "disarmed";
  $("altitude").textContent = fmt(f.altitude);
  $("position").textContent = `x ${fmt(f.x)}  y ${fmt(f.y)} m`;
  $("speed").textContent = fmt(f.speed);
  $("heading").textContent = fmt(f.yaw_deg, 0);
  $("battery").textContent = f.battery === null ? "unknown" : `${Math.round(100 * f.battery)} %`;
  $("source").textContent = f.active_source || "none";
  $("rejections").textContent = f.rejection_count + (f.last_rejection ? ` (last: ${f.last_rejection})` : "");
}

function showAuth(a) {
  if (!a) return;
  const el = $("auth-state");
  el.textContent = a.authorised ? `authorised: ${a.operator}` : "not authorised";
  el.className = "auth " + (a.authorised ? "yes" : "no");
  $("auth-detail").textContent = `${a.reason}` + (a.operator ? ` · confidence ${fmt(a.confidence)}` : "");
}

function addLog(entry) {
  const li = document.createElement("li");
  const t = new Date(entry.t * 1000);
  li.innerHTML = `<span class="t"></span><span class="kind"></span><span class="text"></span>`;
  li.querySelector(".t").textContent = t.toLocaleTimeString();
  li.querySelector(".kind").textContent = entry.kind;
  li.querySelector(".kind").classList.add(entry.kind);
  li.querySelector(".text").textContent = entry.text;   // textContent: log text is never markup
  const log = $("log");
  log.appendChild(li);
  while (log.children.length > 200) log.removeChild(log.firstChild);
  log.scrollTop = log.scrollHeight;
}

// Several vehicles: one button each (name and flight mode); the selected one's state, camera, buttons and commands
// are the panel's. With one vehicle the card stays hidden.
function showVehicles(v) {
  $("vehicles-card").hidden = v.vehicles.length < 2;
  $("flight-vehicle").textContent = v.selected ? `· ${v.selected}` : "";
  const list = $("vehicles");
  list.innerHTML = "";
  for (const vehicle of v.vehicles) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "vehicle" + (vehicle.name === v.selected ? " selected" : "");
    button.setAttribute("aria-pressed", vehicle.name === v.selected);
    button.textContent = `${vehicle.name} · ${vehicle.mode}`;
    button.addEventListener("click", async () => {
      const r = await post("api/vehicle", {name: vehicle.name});
      $("vehicle-result").textContent = r.success ? "" : r.message;
    });
    list.appendChild(button);
  }
}

// ---------------------------------------------------------------------------------------------- camera
const canvas = $("camera");
const ctx = canvas.getContext("2d");
let pendingFrame = null;   // newest frame not yet drawn; older ones are skipped while an image decodes
let decoding = false;

function drawOverlay(o) {
  // Overlay coordinates are camera pixels; the canvas may be larger. Lines and labels keep a fixed size in
  // canvas pixels.
  const sx = canvas.width / o.width, sy = canvas.height / o.height;
  const at = ([x, y]) => [x * sx, y * sy];
  ctx.save();
  ctx.lineWidth = 2;
  ctx.font = "14px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  for (const box of o.boxes) {
    ctx.strokeStyle = box.colour;
    ctx.beginPath();
    box.corners.map(at).forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
    ctx.stroke();
    const [x, y] = at(box.corners[0]);
    const top = Math.max(0, y - 18);
    ctx.fillStyle = box.colour;
    ctx.fillRect(x - 1, top, ctx.measureText(box.label).width + 6, 18);
    ctx.fillStyle = "#fff";
    ctx.fillText(box.label, x + 2, top + 16);
  }
  for (const hand of o.hands) {
    const points = hand.points.map(at);
    ctx.strokeStyle = hand.colour;
    ctx.beginPath();
    for (const [a, b] of hand.segments) {
      ctx.moveTo(...points[a]);
      ctx.lineTo(...points[b]);
    }
    ctx.stroke();
    ctx.fillStyle = "#e62828";
    for (const [x, y] of points) {
      ctx.beginPath();
      ctx.arc(x, y, 3, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  if (o.caption) {
    const label = "gesture: " + o.caption;
    ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
    ctx.fillRect(6, 6, ctx.measureText(label).width + 10, 22);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, 11, 25);
  }
  ctx.restore();
}

function drawNext() {
  if (decoding || !pendingFrame) return;
  const frame = pendingFrame;
  pendingFrame = null;
  decoding = true;
  const img = new Image();
  img.onload = () => {
    if (canvas.width !== frame.width * 2) {   // draw at twice the camera size: overlays stay crisp
      canvas.width = frame.width * 2;
      canvas.height = frame.height * 2;
    }
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    drawOverlay(frame.overlay);
    const what = [];
    if (frame.overlay.boxes.length) what.push(`${frame.overlay.boxes.length} detection(s)`);
    if (frame.overlay.caption) what.push(`gesture ${frame.overlay.caption}`);
    $("camera-caption").textContent = `${frame.width}×${frame.height}` + (what.length ? " · " + what.join(" · ") : "");
    decoding = false;
    drawNext();
  };
  img.onerror = () => { decoding = false; drawNext(); };
  img.src = "data:image/jpeg;base64," + frame.jpeg;
}

// --------------------------------------------------------------------------------------------- events
function connect() {
  const events = new EventSource("events");
  const badge = $("connection");
  events.onopen = () => { badge.textContent = "live"; badge.className = "badge online"; };
  events.onerror = () => { badge.textContent = "disconnected"; badge.className = "badge offline"; };
  events.addEventListener("snapshot", (e) => {
    const s = JSON.parse(e.data);
    showFlight(s.flight);
    showAuth(s.auth);
    $("log").innerHTML = "";
    s.log.forEach(addLog);
  });
  events.addEventListener("flight", (e) => showFlight(JSON.parse(e.data)));
  events.addEventListener("vehicles", (e) => showVehicles(JSON.parse(e.data)));
  events.addEventListener("auth", (e) => showAuth(JSON.parse(e.data)));
  events.addEventListener("log", (e) => addLog(JSON.parse(e.data)));
  events.addEventListener("frame", (e) => { pendingFrame = JSON.parse(e.data); drawNext(); });
}

// -------------------------------------------------------------------------------------------- actions
async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {}),
  });
  return response.json();
}

function wireButton(id, path, label) {
  const button = $(id);
  button.addEventListener("click", async () => {
    button.disabled = true;
    $("button-result").textContent = `${label}…`;
    try {
      const r = await post(path);
      $("button-result").textContent = `${label}: ${r.success ? "accepted" : "refused: " + r.message}`;
    } catch (err) {
      $("button-result").textContent = `${label} failed: ${err}`;
    } finally {
      button.disabled = false;
    }
  });
}

$("command-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("command-text");
  const text = input.value.trim();
  if (!text) return;
  const send = $("command-send");
  send.disabled = true;
  $("command-result").textContent = "sending…";
  try {
    const r = await post("api/command", {text});
    $("command-result").textContent = (r.accepted ? "accepted: " : "not accepted: ") + r.reply;
    if (r.accepted) input.value = "";
  } catch (err) {
    $("command-result").textContent = `failed: ${err}`;
  } finally {
    send.disabled = false;
  }
});

wireButton("land", "api/land", "land");
wireButton("estop", "api/emergency_stop", "emergency stop");
connect();
