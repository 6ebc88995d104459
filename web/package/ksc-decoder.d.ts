// Types of ksc-decoder (src/decode.js).

/** The network's configuration, as the file's header states it. */
export interface KscModel {
  features: "direct" | "latent";
  spheres: number;
  layers: number;
  width: number;
  activation: "silu" | "relu";
  weighting: "paper" | "inverse" | "inverse_square";
  frequencies: number;
  feature_dim: number;
}

/** What the file says about itself: format version, network, frame. */
export interface KscHeader {
  /** Format version [major, minor]. */
  version: [number, number];
  model: KscModel;
  /** Half-width of the normalized frame's box, in [1, 2]. */
  bound: number;
  /** normalized = (original - center) / scale. */
  transform: { center: [number, number, number]; scale: number };
  /** Holes the file keeps open (format 5.1; 0 for a closed surface). */
  holes: number;
  /** A sheet's shell half-thickness (format 5.1): the mesh is one open side, to be drawn two-sided; null for a volume. */
  sheet: number | null;
}

export interface KscInfo extends KscHeader {
  /** Grid cells per axis of the extraction. */
  cells: number;
  /** Network evaluations the extraction made. */
  evaluations: number;
  /** Milliseconds the decode took. */
  ms: number;
}

export interface KscMesh {
  /** Vertex positions (3V), in the input's original coordinates. */
  positions: Float32Array;
  /** Unit outward vertex normals (3V). */
  normals: Float32Array;
  /** Triangles as vertex indices (3F), counter-clockwise seen from outside. */
  indices: Uint32Array;
  /** The key spheres as (x, y, z, r) rows (4S), original coordinates. */
  spheres: Float32Array;
  info: KscInfo;
}

export type KscProgress =
  | { stage: "header"; info: KscHeader }
  | { stage: "surface"; cells: number; fraction: number }
  | { stage: "preview"; cells: number; positions: Float32Array; normals: Float32Array; indices: Uint32Array };

export interface DecodeOptions {
  /** Grid cells per axis: 16 times a power of two, at most MAX_CELLS. Default DEFAULT_CELLS (128). */
  cells?: number;
  /** A coarser grid whose mesh onProgress gets first (stage "preview"), e.g. 64. Default none. */
  preview?: number | null;
  /** Decode in a Web Worker. Default: wherever `Worker` exists (browsers), else in the calling thread. */
  worker?: boolean;
  /** Called once the header is read, then as each level of the coarse-to-fine extraction is done. */
  onProgress?: (event: KscProgress) => void;
}

/** Decode a .ksc file's bytes; rejects with KscFormatError (one line) for a file ksc refuses. */
export function decode(bytes: Uint8Array | ArrayBuffer, options?: DecodeOptions): Promise<KscMesh>;

/** What is wrong with a .ksc file, in one line (the Python reader's message). */
export class KscFormatError extends Error {
  name: "KscFormatError";
}

export const DEFAULT_CELLS: number;
export const MAX_CELLS: number;
