// The studio page: plain JavaScript, no framework, nothing fetched from the internet.
// Every image is one recipe (gan_jax.sampling.Recipe) rendered by the server.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);

const S = {
  runs: [], info: null, run: null, step: "latest", ema: true,
  pageStart: 0, pageCount: 16, cols: 4,
  x: 0, y: 0, truncation: null, label: null, noiseMode: "const",
  walkTo: null, t: 0,
  method: "sefa", editLayers: "all", edits: {}, directions: null,
  mixSeed: null, mixLayers: "0-3", w: null,
};
// Image-to-image runs: the uploaded picture, the painted hole (inpainting), the last output.
const T = { image: null, hole: null, painting: false, output: null };
// For the browser test and the console: the state, and whether every request has answered.
window.studio = { state: S, translate: T, idle: () => inflight === 0 && !rendering && !dirty };

// ---- requests --------------------------------------------------------------------------

let inflight = 0;
function busy(delta) {
  inflight += delta;
  const el = $("busy");
  el.className = inflight > 0 ? "working" : "idle";
  el.textContent = inflight > 0 ? "working\u2026" : "ready";
}

function showError(text) {
  const el = $("message");
  el.textContent = text;
  el.hidden = !text;
}

async function api(path, { body = undefined, raw = undefined, type = "json", method = undefined } = {}) {
  const headers = {};
  if (TOKEN) headers["X-Studio-Token"] = TOKEN;
  const init = { headers, method: method || (body !== undefined || raw !== undefined ? "POST" : "GET") };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  if (raw !== undefined) { headers["Content-Type"] = raw.type || "application/octet-stream"; init.body = raw; }
  busy(+1);
  try {
    const res = await fetch(path, init);
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return type === "blob" ? await res.blob() : await res.json();
  } finally {
    busy(-1);
  }
}

function model() {
  return { run: S.run, step: S.step === "latest" || S.step === "best" ? S.step : Number(S.step), ema: S.ema };
}

function plainRecipe() {  // what the grid shares with the picked image
  const r = { truncation: S.truncation };
  if (S.info && S.info.num_classes) r.label = S.label || 0;
  if (S.info && S.info.style) r.noise_mode = S.noiseMode;
  return r;
}

function recipe() {
  const r = { ...plainRecipe(), x: S.x, y: S.y };
  if (S.walkTo) { r.to = S.walkTo; r.t = S.t; }
  const edits = Object.entries(S.edits).filter(([, v]) => v !== 0).map(([k, v]) => [S.method, Number(k), v]);
  if (edits.length) { r.edits = edits; if (S.info.style) r.edit_layers = S.editLayers; }
  if (S.info && S.info.style) {
    if (S.mixSeed !== null) { r.mix_seed = S.mixSeed; r.mix_layers = S.mixLayers; }
    if (S.w) r.w = S.w;
  }
  return r;
}

function seedOf(x, y) { return Math.round(x) + 1000 * Math.round(y); }
function isNode(x, y) { return Number.isInteger(x) && Number.isInteger(y); }
function pointName(x, y) { return isNode(x, y) ? `seed ${seedOf(x, y)}` : `(${x.toFixed(2)}, ${y.toFixed(2)})`; }

// ---- the picked image: the latest request wins, and drags never queue up ---------------

let rendering = false, dirty = false;
async function renderMain() {
  if (!S.run) return;
  if (rendering) { dirty = true; return; }
  rendering = true;
  try {
    const blob = await api("api/image", { body: { ...model(), recipe: recipe() }, type: "blob" });
    const img = $("main-img");
    const old = img.src;
    img.src = URL.createObjectURL(blob);
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    $("caption").textContent = JSON.stringify(recipe());
    showError("");
  } catch (e) {
    showError(e.message);
  } finally {
    rendering = false;
    if (dirty) { dirty = false; renderMain(); }
  }
}

async function renderGrid() {
  if (!S.run) return;
  try {
    const blob = await api("api/grid", {
      body: { ...model(), start: S.pageStart, count: S.pageCount, cols: S.cols, recipe: plainRecipe() },
      type: "blob",
    });
    const img = $("grid-img");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    drawOverlay();
  } catch (e) {
    showError(e.message);
  }
}

function drawOverlay() {
  const ov = $("grid-overlay");
  ov.innerHTML = "";
  ov.style.gridTemplateColumns = `repeat(${S.cols}, 1fr)`;
  for (let k = 0; k < S.pageCount; k++) {
    const seed = S.pageStart + k;
    const cell = document.createElement("div");
    cell.dataset.seed = seed;
    cell.title = `seed ${seed}`;
    if (isNode(S.x, S.y) && seedOf(S.x, S.y) === seed && !S.w) cell.classList.add("picked");
    if (S.walkTo && isNode(...S.walkTo) && seedOf(...S.walkTo) === seed) cell.classList.add("walk-end");
    cell.addEventListener("click", (ev) => {
      const point = [seed % 1000, Math.floor(seed / 1000)];
      if (ev.shiftKey) { setWalkEnd(point); } else { pick(point); }
    });
    ov.appendChild(cell);
  }
}

function pick([x, y]) {
  S.x = x; S.y = y; S.w = null;
  planeOrigin = null;
  drawOverlay(); drawPlane(); updateWalk();
  renderMain();
}

// ---- the seed plane --------------------------------------------------------------------

const CELLS = 5;
let planeOrigin = null, dragging = false;
function drawPlane() {
  const c = $("plane"), g = c.getContext("2d"), step = c.width / CELLS;
  if (!planeOrigin) planeOrigin = [Math.max(0, Math.floor(S.x) - 2), Math.max(0, Math.floor(S.y) - 2)];
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = "#333844"; g.fillStyle = "#9aa0ab"; g.font = "10px system-ui"; g.textAlign = "center";
  for (let i = 0; i < CELLS; i++) {
    for (let j = 0; j < CELLS; j++) {
      const px = (i + 0.5) * step, py = (j + 0.5) * step;
      g.beginPath(); g.arc(px, py, 2, 0, 2 * Math.PI); g.fill();
      g.fillText(seedOf(planeOrigin[0] + i, planeOrigin[1] + j), px, py + 13);
    }
  }
  const px = (S.x - planeOrigin[0] + 0.5) * step, py = (S.y - planeOrigin[1] + 0.5) * step;
  g.fillStyle = "#e3a34a"; g.beginPath(); g.arc(px, py, 6, 0, 2 * Math.PI); g.fill();
  $("plane-info").textContent = S.w ? "your projected image" : pointName(S.x, S.y);
}

function planePoint(ev) {
  const c = $("plane"), r = c.getBoundingClientRect(), step = r.width / CELLS;
  const x = planeOrigin[0] + (ev.clientX - r.left) / step - 0.5;
  const y = planeOrigin[1] + (ev.clientY - r.top) / step - 0.5;
  const snap = (v) => (Math.abs(v - Math.round(v)) < 0.08 ? Math.round(v) : Math.round(v * 100) / 100);
  return [Math.max(0, snap(x)), Math.max(0, snap(y))];
}

function setupPlane() {
  const c = $("plane");
  c.addEventListener("pointerdown", (ev) => { dragging = true; c.setPointerCapture(ev.pointerId); movePlane(ev); });
  c.addEventListener("pointermove", (ev) => { if (dragging) movePlane(ev); });
  c.addEventListener("pointerup", () => { dragging = false; planeOrigin = null; drawPlane(); drawOverlay(); });
}
function movePlane(ev) {
  [S.x, S.y] = planePoint(ev);
  S.w = null;
  drawPlane(); updateWalk();
  renderMain();
}

// ---- walk ------------------------------------------------------------------------------

function setWalkEnd(point) {
  S.walkTo = point; S.t = 0; $("walk-t").value = 0;
  drawOverlay(); updateWalk(); renderMain();
}

function updateWalk() {
  $("walk-a").textContent = S.w ? "your image" : pointName(S.x, S.y);
  $("walk-b").textContent = S.walkTo ? pointName(...S.walkTo) : "-";
  for (const id of ["walk-t", "export-gif", "export-mp4"]) $(id).disabled = !S.walkTo;
  $("walk-t-out").textContent = S.t.toFixed(2);
}

async function exportWalk(format) {
  const frames = Number($("walk-frames").value) || 48;
  const link = $("walk-download"), bar = $("walk-progress");
  link.hidden = true;
  try {
    const { job } = await api("api/walk", { body: { ...model(), recipe: { ...recipe(), t: 0 }, frames, format } });
    bar.hidden = false;
    const status = await waitJob(job, bar);
    const blob = await api(`api/jobs/${job}/result`, { type: "blob" });
    link.href = URL.createObjectURL(blob);
    link.download = status.info.filename || `walk.${format}`;
    link.textContent = `download ${link.download} (${Math.round(blob.size / 1024)} KiB)`;
    link.hidden = false;
    showError("");
  } catch (e) {
    showError(e.message);
  } finally {
    bar.hidden = true;
  }
}

async function waitJob(job, bar) {
  for (;;) {
    const st = await api(`api/jobs/${job}`);
    bar.max = st.total || 1; bar.value = st.done;
    if (st.state === "done") return st;
    if (st.state === "failed") throw new Error(st.error);
    await new Promise((r) => setTimeout(r, 300));
  }
}

// ---- edits -----------------------------------------------------------------------------

async function loadDirections() {
  S.edits = {};
  const box = $("sliders");
  box.innerHTML = "";
  try {
    const d = await api("api/directions", {
      body: { ...model(), method: S.method, layers: S.info.style ? S.editLayers : "all", num: 8 },
    });
    S.directions = d;
    d.values.forEach((value, k) => {
      const label = document.createElement("label");
      const what = d.method === "sefa" ? "eigenvalue" : "variance";
      label.innerHTML = `#${k} <span class="hint">${what} ${value.toPrecision(3)}</span> <output>0</output>`;
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: -5, max: 5, step: 0.1, value: 0, className: "dir-slider" });
      input.dataset.index = k;
      input.addEventListener("input", () => {
        S.edits[k] = Number(input.value);
        label.querySelector("output").textContent = Number(input.value).toFixed(1);
        renderMain();
      });
      label.appendChild(input);
      box.appendChild(label);
    });
  } catch (e) {
    showError(e.message);
  }
}

function layerRanges(n) {
  const out = [["all", `all (0-${n - 1})`]];
  const add = (lo, hi, name) => { if (lo < n) out.push([`${lo}-${Math.min(hi, n - 1)}`, `${name} (${lo}-${Math.min(hi, n - 1)})`]); };
  add(0, 3, "coarse"); add(4, 7, "middle"); add(8, n - 1, "fine");
  return out;
}

// ---- your image (StyleGAN2) -------------------------------------------------------------

async function projectUpload() {
  const file = $("upload").files[0];
  if (!file) { showError("choose an image first"); return; }
  const steps = Number($("project-steps").value) || 200;
  const bar = $("project-progress");
  const features = $("project-features").checked ? "1" : "0";
  const q = new URLSearchParams({ run: S.run, step: S.step, ema: S.ema ? "1" : "0", steps, features });
  try {
    const { job } = await api(`api/project?${q}`, { raw: file });
    bar.hidden = false;
    const st = await waitJob(job, bar);
    S.w = st.info.recipe.w;
    $("project-info").textContent = `projected: PSNR ${st.info.psnr.toFixed(1)} dB`;
    drawPlane(); drawOverlay(); updateWalk(); renderMain();
  } catch (e) {
    showError(e.message);
  } finally {
    bar.hidden = true;
  }
}

// ---- image-to-image runs: upload, paint the hole, translate ------------------------------

function translateMode(on) {
  $("translate-panel").hidden = !on;
  $("explore").hidden = on;
  $("controls").hidden = on;
  document.querySelector("main").classList.toggle("translate", on);
  // A translation's PNG is the output as it is: no recipe, no rescaling.
  $("save-scale-row").hidden = on;
  $("save-hint").hidden = on;
}

function setupTranslate(info) {
  T.output = null;
  $("t-brush-row").hidden = !info.inpaint;
  $("t-hint").textContent = info.inpaint
    ? "Paint the hole over your picture, then Translate: the model fills it and keeps the rest."
    : `Task ${info.task}: the model reads your picture as it is` +
      (info.factor > 1 ? ` and enlarges it ${info.factor}x.` : ".");
  $("main-img").removeAttribute("src");
  $("caption").textContent = "";
  drawTranslateInput();
}

async function loadTranslateImage() {
  const file = $("t-upload").files[0];
  if (!file) return;
  try {
    T.image = await createImageBitmap(file);
  } catch (e) {
    showError(`cannot read ${file.name} as an image`);
    return;
  }
  const c = $("t-canvas");
  c.width = T.image.width; c.height = T.image.height;
  T.hole = document.createElement("canvas");
  T.hole.width = T.image.width; T.hole.height = T.image.height;
  $("t-run").disabled = false;
  showError("");
  drawTranslateInput();
}

function drawTranslateInput() {
  const c = $("t-canvas"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (!T.image) return;
  ctx.drawImage(T.image, 0, 0);
  if (T.hole) { ctx.globalAlpha = 0.7; ctx.drawImage(T.hole, 0, 0); ctx.globalAlpha = 1; }
}

function paintHole(ev) {
  if (!T.hole || !S.info || !S.info.inpaint) return;
  const c = $("t-canvas"), r = c.getBoundingClientRect();
  const x = (ev.clientX - r.left) * c.width / r.width, y = (ev.clientY - r.top) * c.height / r.height;
  const ctx = T.hole.getContext("2d");
  ctx.fillStyle = "#e3a34a";
  ctx.beginPath();
  ctx.arc(x, y, Number($("t-brush").value), 0, 2 * Math.PI);
  ctx.fill();
  drawTranslateInput();
}

async function runTranslate() {
  if (!T.image) { showError("choose an image first"); return; }
  // The upload: the picture, its painted hole made transparent (the server's hole mask).
  const c = document.createElement("canvas");
  c.width = T.image.width; c.height = T.image.height;
  const ctx = c.getContext("2d");
  ctx.drawImage(T.image, 0, 0);
  if (S.info.inpaint) {
    const img = ctx.getImageData(0, 0, c.width, c.height);
    const hole = T.hole.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < img.data.length; i += 4) if (hole[i] > 0) img.data[i] = 0;
    ctx.putImageData(img, 0, 0);
  }
  const blob = await new Promise((done) => c.toBlob(done, "image/png"));
  const q = new URLSearchParams({ run: S.run, step: S.step, ema: S.ema ? "1" : "0" });
  try {
    T.output = await api(`api/translate?${q}`, { raw: blob, type: "blob" });
    const img = $("main-img");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(T.output);
    const f = S.info.factor || 1;
    $("caption").textContent = `${S.info.task}: ${c.width}x${c.height} -> ${c.width * f}x${c.height * f}`;
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

// ---- save ------------------------------------------------------------------------------

async function savePng() {
  if (S.info && S.info.translate) {
    if (!T.output) { showError("translate an image first"); return; }
    const link = $("save-link");
    link.href = URL.createObjectURL(T.output);
    link.download = `${S.run}_${S.info.task.replace(/\W+/g, "_")}.png`;
    link.click();
    return;
  }
  try {
    const scale = Number($("save-scale").value);
    const blob = await api("api/image", { body: { ...model(), recipe: recipe(), scale }, type: "blob" });
    const link = $("save-link");
    link.href = URL.createObjectURL(blob);
    const where = S.w ? "projected" : isNode(S.x, S.y) ? `seed${seedOf(S.x, S.y)}` : `x${S.x}_y${S.y}`;
    link.download = `${S.run}_step${S.info.steps.at(-1)}_${where}.png`;
    link.click();
  } catch (e) {
    showError(e.message);
  }
}

// ---- the run: timelapse and curves -------------------------------------------------------

async function showRunImage(kind) {
  const img = $(kind);
  try {
    const blob = await api(`api/${kind}?run=${encodeURIComponent(S.run)}`, { type: "blob" });
    img.src = URL.createObjectURL(blob);
    img.hidden = false;
  } catch (e) {
    showError(`${kind}: ${e.message}`);
  }
}

// ---- runs and checkpoints ---------------------------------------------------------------

function selectRun(name) {
  const info = S.runs.find((r) => r.name === name);
  S.run = name; S.info = info; S.step = "latest";
  S.x = 0; S.y = 0; S.w = null; S.walkTo = null; S.t = 0; S.edits = {}; S.mixSeed = null;
  S.label = info.num_classes ? 0 : null;
  $("model-info").textContent = info.error
    ? info.error
    : info.translate
      ? `${info.model}, ${info.task}, trained at ${info.image_size} px`
      : `${info.model}, ${info.image_size} px` + (info.num_classes ? `, ${info.num_classes} classes` : "");
  if (info.error) { showError(`${name}: ${info.error}`); return; }
  const step = $("step");
  step.innerHTML = "";
  const opts = [["latest", `latest (${info.steps.at(-1)})`]];
  if (info.best) opts.push(["best", "best FID"]);
  for (const s of [...info.steps].reverse()) opts.push([String(s), `step ${s}`]);
  for (const [v, t] of opts) step.add(new Option(t, v));
  translateMode(!!info.translate);
  $("timelapse").hidden = true; $("curves").hidden = true;
  if (info.translate) { setupTranslate(info); return; }
  $("class-row").hidden = !info.num_classes;
  const label = $("label");
  label.innerHTML = "";
  for (let k = 0; k < (info.num_classes || 0); k++) label.add(new Option(`class ${k}`, k));
  $("noise-row").hidden = !info.style;
  $("style-panel").hidden = !info.style;
  $("edit-layers-row").hidden = !info.style;
  const method = $("edit-method");
  method.innerHTML = "";
  method.add(new Option("SeFa (closed form)", "sefa"));
  if (info.style) method.add(new Option("GANSpace (PCA of w)", "ganspace"));
  S.method = "sefa";
  for (const id of ["edit-layers", "mix-layers"]) {
    const sel = $(id);
    sel.innerHTML = "";
    for (const [v, t] of layerRanges(info.num_ws || 1)) {
      if (id === "mix-layers" && v === "all") continue;
      sel.add(new Option(t, v));
    }
  }
  S.editLayers = "all"; S.mixLayers = $("mix-layers").value || "0-3";
  // Truncation: z models redraw |z| > t (slider max = off); StyleGAN2 pulls w by psi (1 = off).
  const tr = $("truncation");
  if (info.style) { tr.min = 0; tr.max = 1.5; tr.step = 0.05; tr.value = 1; }
  else { tr.min = 0.1; tr.max = 3; tr.step = 0.05; tr.value = 3; }
  S.truncation = null;
  $("truncation-out").textContent = "off";
  $("timelapse").hidden = true; $("curves").hidden = true;
  planeOrigin = null;
  drawPlane(); updateWalk();
  refreshAll();
}

function refreshAll() {
  if (S.info && S.info.translate) { if (T.output) runTranslate(); return; }
  renderGrid();
  renderMain();
  loadDirections();
}

function bind() {
  $("run").addEventListener("change", (e) => selectRun(e.target.value));
  $("step").addEventListener("change", (e) => { S.step = e.target.value; refreshAll(); });
  $("ema").addEventListener("change", (e) => { S.ema = e.target.checked; refreshAll(); });
  $("page-prev").addEventListener("click", () => { S.pageStart = Math.max(0, S.pageStart - S.pageCount); $("page-start").value = S.pageStart; renderGrid(); });
  $("page-next").addEventListener("click", () => { S.pageStart += S.pageCount; $("page-start").value = S.pageStart; renderGrid(); });
  $("page-start").addEventListener("change", (e) => { S.pageStart = Math.max(0, Number(e.target.value) || 0); renderGrid(); });
  $("truncation").addEventListener("input", (e) => {
    const v = Number(e.target.value);
    const off = S.info.style ? v === 1 : v >= 3;
    S.truncation = off ? null : v;
    $("truncation-out").textContent = off ? "off" : v.toFixed(2);
    renderMain();
  });
  $("truncation").addEventListener("change", renderGrid);
  $("label").addEventListener("change", (e) => { S.label = Number(e.target.value); renderGrid(); renderMain(); });
  $("noise-mode").addEventListener("change", (e) => { S.noiseMode = e.target.value; renderGrid(); renderMain(); });
  $("walk-set-b").addEventListener("click", () => setWalkEnd([S.x, S.y]));
  $("walk-t").addEventListener("input", (e) => { S.t = Number(e.target.value); updateWalk(); renderMain(); });
  $("export-gif").addEventListener("click", () => exportWalk("gif"));
  $("export-mp4").addEventListener("click", () => exportWalk("mp4"));
  $("edit-method").addEventListener("change", (e) => { S.method = e.target.value; loadDirections().then(renderMain); });
  $("edit-layers").addEventListener("change", (e) => { S.editLayers = e.target.value; loadDirections().then(renderMain); });
  $("edit-reset").addEventListener("click", () => { loadDirections().then(renderMain); });
  $("mix-seed").addEventListener("change", (e) => {
    const v = e.target.value.trim();
    S.mixSeed = v === "" ? null : Math.max(0, Math.floor(Number(v)));
    renderMain();
  });
  $("mix-layers").addEventListener("change", (e) => { S.mixLayers = e.target.value; renderMain(); });
  $("project").addEventListener("click", projectUpload);
  $("t-upload").addEventListener("change", loadTranslateImage);
  $("t-run").addEventListener("click", runTranslate);
  $("t-clear").addEventListener("click", () => {
    if (T.hole) T.hole.getContext("2d").clearRect(0, 0, T.hole.width, T.hole.height);
    drawTranslateInput();
  });
  const tc = $("t-canvas");
  tc.addEventListener("pointerdown", (e) => { T.painting = true; tc.setPointerCapture(e.pointerId); paintHole(e); });
  tc.addEventListener("pointermove", (e) => { if (T.painting) paintHole(e); });
  tc.addEventListener("pointerup", () => { T.painting = false; });
  $("save-png").addEventListener("click", savePng);
  $("show-timelapse").addEventListener("click", () => showRunImage("timelapse"));
  $("show-curves").addEventListener("click", () => showRunImage("curves"));
  setupPlane();
}

async function start() {
  bind();
  try {
    const { runs } = await api("api/runs");
    S.runs = runs;
    const sel = $("run");
    for (const r of runs) sel.add(new Option(r.name + (r.error ? " (unusable)" : ""), r.name));
    const first = runs.find((r) => !r.error) || runs[0];
    sel.value = first.name;
    selectRun(first.name);
  } catch (e) {
    showError(e.message);
  }
}

start();
