// The page: open a .ksc (file picker, drag-and-drop or ?file=URL), rebuild its network, extract the surface
// coarse then fine, and show it. A file the reader refuses shows the reader's message, never a stale shape.
// window.kscViewer (for scripts and tests): state "idle", "loading", "ready" (first frame drawn), "refined" (the
// fine surface drawn) or "error"; error, the message shown; timings, milliseconds from opening to each state;
// triangles; render() and showSpheres(bool).

import { extractSurface } from "./extract.js";
import { loadField } from "./field.js";
import { MAX_FILE_BYTES } from "./format.js";
import { createViewer } from "./viewer.js";

const FIRST_CELLS = 64;
const FINE_CELLS = 128;

const status = document.getElementById("status");
const message = document.getElementById("message");
const canvas = document.getElementById("view");
const spheresToggle = document.getElementById("spheres");
const page = { state: "idle", error: null, timings: {}, triangles: 0 };
window.kscViewer = page;

let viewer = null;
try {
  viewer = createViewer(canvas);
  page.render = viewer.render;
  page.showSpheres = (show) => {
    spheresToggle.checked = show;
    viewer.showSpheres(show);
  };
} catch (error) {
  fail(error.message);
}

function setState(state) {
  page.state = state;
  document.body.dataset.state = state;
}

function fail(text) {
  page.error = text;
  message.textContent = text;
  message.hidden = false;
  status.textContent = "";
  if (viewer) viewer.clear();
  setState("error");
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

let generation = 0;

async function open(name, bytesPromise) {
  const mine = ++generation;
  const start = performance.now();
  page.timings = {};
  page.error = null;
  message.hidden = true;
  setState("loading");
  status.textContent = `reading ${name}…`;
  try {
    const bytes = await bytesPromise;
    if (bytes.length > MAX_FILE_BYTES) throw new Error(`${name}: larger than ${MAX_FILE_BYTES} bytes, the most a .ksc file can hold`);
    const decoded = loadField(bytes);
    page.timings.load = performance.now() - start;
    if (!viewer) return;
    const { field, bound, container, model } = decoded;
    viewer.setSpheres(container.tensors.length ? sphereRows(decoded) : new Float32Array());
    const about = `${name}: ${bytes.length.toLocaleString("en")} bytes, format ${container.version.join(".")}, ${model.spheres} key spheres`;
    for (const [cells, label] of [[FIRST_CELLS, "ready"], [FINE_CELLS, "refined"]]) {
      status.textContent = `${about} — extracting the surface at ${cells}³…`;
      await nextFrame();
      if (mine !== generation) return;
      const mesh = extractSurface(field, bound, cells);
      if (mine !== generation) return;
      viewer.setMesh(mesh);
      viewer.render();
      page.triangles = mesh.indices.length / 3;
      page.timings[label] = performance.now() - start;
      status.textContent = `${about}, ${page.triangles.toLocaleString("en")} triangles (${cells}³ grid)`;
      setState(label);
    }
  } catch (error) {
    if (mine === generation) fail(error.message);
  }
}

function sphereRows(decoded) {
  return decoded.field.spheresData;
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function fileBytes(file) {
  if (file.size > MAX_FILE_BYTES) throw new Error(`${file.name}: larger than ${MAX_FILE_BYTES} bytes, the most a .ksc file can hold`);
  return new Uint8Array(await file.arrayBuffer());
}

document.getElementById("picker").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) open(file.name, fileBytes(file));
});
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => {
  event.preventDefault();
  const [file] = event.dataTransfer.files;
  if (file) open(file.name, fileBytes(file));
});
spheresToggle.addEventListener("change", () => viewer && viewer.showSpheres(spheresToggle.checked));
document.getElementById("reset").addEventListener("click", () => viewer && viewer.resetView());

const url = new URLSearchParams(window.location.search).get("file");
if (url && viewer) open(url.split("/").pop(), fetchBytes(url));
else if (viewer) status.textContent = "Open a .ksc file (button above, or drop it on the page).";
