// The page: open a .ksc (file picker, drag-and-drop or ?file=URL); a worker (worker.js) rebuilds its network
// and extracts the surface, coarse then fine, and the page shows each as it comes. A file the reader refuses
// shows the reader's message, never a stale shape.
// window.kscViewer (for scripts and tests): state "idle", "loading", "ready" (first frame drawn), "refined" (the
// fine surface drawn) or "error"; error, the message shown; timings, milliseconds from opening to each state;
// triangles; render(), showSpheres(bool) and orbitTiming(frames) (milliseconds a frame while orbiting).

import { MAX_FILE_BYTES } from "./limits.js";
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
  page.orbitTiming = viewer.orbitTiming;
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

let worker = null;

/** Decode in a worker (a fresh one per file, so that a file opened during another's decode replaces it). */
async function open(name, bytesPromise) {
  if (worker) worker.terminate();
  worker = null;
  const start = performance.now();
  page.timings = {};
  page.error = null;
  message.hidden = true;
  if (viewer) viewer.clear(); // no shape of the previous file while this one loads
  setState("loading");
  status.textContent = `reading ${name}…`;
  let bytes;
  try {
    bytes = await bytesPromise;
    if (bytes.length > MAX_FILE_BYTES) throw new Error(`${name}: larger than ${MAX_FILE_BYTES} bytes, the most a .ksc file can hold`);
  } catch (error) {
    fail(error.message);
    return;
  }
  if (!viewer) return;
  const size = bytes.length; // the buffer is handed to the worker below, which empties this view
  const mine = new Worker(new URL("ksc-worker.js", import.meta.url), { type: "module" });
  worker = mine;
  let about = name;
  mine.onmessage = ({ data }) => {
    if (worker !== mine) return;
    if (data.kind === "error") {
      fail(data.message);
      mine.terminate();
      return;
    }
    if (data.kind === "header") {
      page.timings.load = performance.now() - start;
      viewer.setSpheres(data.spheres);
      about = `${name}: ${size.toLocaleString("en")} bytes, format ${data.version.join(".")}, ${data.model.spheres} key spheres`;
      status.textContent = `${about} — extracting the surface…`;
      return;
    }
    viewer.setMesh(data);
    viewer.render();
    const label = data.cells === FINE_CELLS ? "refined" : "ready";
    page.triangles = data.indices.length / 3;
    page.timings[label] = performance.now() - start;
    status.textContent = `${about}, ${page.triangles.toLocaleString("en")} triangles (${data.cells}³ grid)`;
    if (label === "ready") status.textContent += " — refining…";
    setState(label);
    if (label === "refined") mine.terminate();
  };
  mine.onerror = (event) => {
    if (worker === mine) fail(`the decoder stopped: ${event.message || "worker error"}`);
  };
  mine.postMessage({ bytes, cells: FINE_CELLS, sizes: [FIRST_CELLS] }, [bytes.buffer]);
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
if (url && viewer) open(decodeURIComponent(url.split("/").pop()), fetchBytes(url));
else if (viewer) status.textContent = "Open a .ksc file (button above, or drop it on the page).";
