// Types of ksc-decoder/three (src/three.js).
import { BufferGeometry, Loader, LoadingManager } from "three";

import type { KscInfo } from "./ksc-decoder.js";

/** Loads a .ksc file as a BufferGeometry (position, normal, index) in the input's original coordinates. */
export class KSCLoader extends Loader<BufferGeometry> {
  constructor(manager?: LoadingManager);
  /** Grid cells per axis of the extraction (16 times a power of two; default 128). */
  setCells(cells: number): this;
  /** A coarser grid (e.g. 64) to hand over first, refined in place later (a "refined" event), or null (default). */
  setPreview(cells: number | null): this;
  /** Decode in a Web Worker (default where one exists) or in the calling thread. */
  setWorker(worker: boolean): this;
  load(
    url: string,
    onLoad: (geometry: BufferGeometry & { userData: { spheres: Float32Array; info: KscInfo } }) => void,
    onProgress?: (event: ProgressEvent) => void,
    onError?: (error: unknown) => void,
  ): void;
  parse(buffer: ArrayBuffer | Uint8Array): Promise<BufferGeometry>;
}
