// ksc-decoder/three: a three.js loader for `.ksc` files, in the manner of three's own loaders (DRACOLoader,
// PLYLoader). `three` is a peer dependency, never bundled: the application's copy is the one used.

import { BufferAttribute, BufferGeometry, FileLoader, Loader } from "three";

import { DEFAULT_CELLS, decode } from "./decode.js";

/**
 * Loads a `.ksc` file as a BufferGeometry with position, normal and index attributes in the input's original
 * coordinates; geometry.userData holds {spheres: Float32Array (x, y, z, r rows), info (the header's from the first
 * surface on, the extraction's once refined), refined}.
 *
 * With setPreview(cells), the geometry is handed over as soon as the coarse preview grid's surface exists and
 * is refined in place when the fine one does: its attributes are replaced, userData.refined becomes true and it
 * dispatches a "refined" event (an app that renders on demand renders again then; one with an animation loop
 * needs nothing).
 */
export class KSCLoader extends Loader {
  constructor(manager) {
    super(manager);
    this.cells = DEFAULT_CELLS;
    this.preview = null;
    this.worker = typeof Worker !== "undefined";
  }

  /** Grid cells per axis of the extraction (16 times a power of two up to 512; default 128). */
  setCells(cells) {
    this.cells = cells;
    return this;
  }

  /** A coarser grid (e.g. 64) to show first, or null (default) to hand over only the fine surface. */
  setPreview(cells) {
    this.preview = cells;
    return this;
  }

  /** Decode in a Web Worker (default where one exists) or in the calling thread. */
  setWorker(worker) {
    this.worker = worker;
    return this;
  }

  load(url, onLoad, onProgress, onError) {
    const loader = new FileLoader(this.manager);
    loader.setPath(this.path);
    loader.setResponseType("arraybuffer");
    loader.setRequestHeader(this.requestHeader);
    loader.setWithCredentials(this.withCredentials);
    const fail = (error) => {
      if (onError) onError(error);
      else console.error(error);
      this.manager.itemError(url);
    };
    loader.load(url, (buffer) => this.parse(buffer).then(onLoad, fail), onProgress, fail);
  }

  /**
   * The geometry of a `.ksc` file's bytes (ArrayBuffer or Uint8Array): a promise of the fine surface, or with a
   * preview grid, of the preview's (refined in place later; a failure after the preview is logged).
   */
  parse(buffer) {
    const geometry = new BufferGeometry();
    return new Promise((resolve, reject) => {
      let shown = false;
      const onProgress = (event) => {
        if (event.stage === "header") geometry.userData.info = event.info; // the preview's geometry has it too
        if (event.stage !== "preview") return;
        setSurface(geometry, event, false);
        shown = true;
        resolve(geometry);
      };
      decode(buffer, { cells: this.cells, preview: this.preview, worker: this.worker, onProgress }).then(
        (mesh) => {
          geometry.userData.spheres = mesh.spheres;
          geometry.userData.info = mesh.info;
          setSurface(geometry, mesh, true);
          if (shown) geometry.dispatchEvent({ type: "refined" });
          else resolve(geometry);
        },
        (error) => (shown ? console.error(error) : reject(error)),
      );
    });
  }
}

function setSurface(geometry, { positions, normals, indices }, refined) {
  geometry.setAttribute("position", new BufferAttribute(positions, 3));
  geometry.setAttribute("normal", new BufferAttribute(normals, 3));
  geometry.setIndex(new BufferAttribute(indices, 1));
  geometry.userData.refined = refined;
  geometry.computeBoundingSphere();
}
