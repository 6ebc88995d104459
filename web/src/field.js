// The key-sphere network of a `.ksc` file, evaluated in JavaScript: the same field as ksc/models/runtime.py's
// SphereField (format/SPEC.md, "Tensors"), in double precision. loadField makes ksc/decoding/pipeline.py's load_field
// checks: bound in [1, 2], a finite transform, the model fields each format version defines, radii >= 0.

import { KscFormatError } from "./errors.js";
import { decodeHoles } from "./holes.js";
import { decodeTensor, isMap, modelFromMap, readContainer, tensorLayout } from "./format.js";

const MIN_DISTANCE = 1e-3;
const FOURIER_MAJOR = 3;
const FEATURE_DIM_MAJOR = 4;
const PAPER_FEATURE_DIM = 29;

function modelConfig(section, major) {
  if (!isMap(section)) throw new KscFormatError("header field 'model' is missing or not a map");
  const missing = ["features", "spheres", "layers", "width", "activation"].filter((name) => !(name in section));
  if (missing.length) throw new KscFormatError(`header field 'model' lacks ${missing.join(", ")}`); // every writer stored them
  let model = section;
  for (const [name, since, before] of [
    ["frequencies", FOURIER_MAJOR, 0],
    ["feature_dim", FEATURE_DIM_MAJOR, PAPER_FEATURE_DIM],
  ]) {
    if (major < since) {
      if (name in model) throw new KscFormatError(`header field 'model' has '${name}', which format ${major}.x does not define`);
      model = { ...model, [name]: before };
    } else if (!(name in model)) {
      throw new KscFormatError(`header field 'model' lacks '${name}', which format ${major}.x requires`);
    }
  }
  if (!("weighting" in model)) model = { ...model, weighting: "paper" }; // files before 3.x may leave it out
  return modelFromMap(model);
}

function transformOf(section) {
  if (!isMap(section)) throw new KscFormatError("header field 'transform' is missing or not a map");
  const { center, scale } = section;
  if (!Array.isArray(center) || center.length !== 3 || !center.every((v) => typeof v === "number" && Number.isFinite(v))) {
    throw new KscFormatError(`transform.center must be 3 finite floats, got ${JSON.stringify(center)}`);
  }
  if (typeof scale !== "number" || !Number.isFinite(scale) || !(scale > 0)) {
    throw new KscFormatError(`transform.scale must be a positive finite float, got ${JSON.stringify(scale)}`);
  }
  return { center, scale };
}

/**
 * Rebuild the network from `.ksc` bytes alone.
 * Returns {field: SphereField, model, transform: {center, scale}, bound, container, holes (holes.js decodeHoles),
 * sheet (the shell's half-thickness of a sheet, sheets.js; null otherwise)};
 * throws KscFormatError.
 */
export function loadField(data) {
  const container = readContainer(data);
  const { meta } = container;
  const transform = transformOf(meta.transform);
  const { bound } = meta;
  if (typeof bound !== "number" || !(bound >= 1 && bound <= 2)) {
    throw new KscFormatError(`header field 'bound' must be a float in [1, 2], got ${JSON.stringify(bound)}`);
  }
  const model = modelConfig(meta.model, container.version[0]);
  const tensors = {};
  for (const record of container.tensors) tensors[record.name] = { shape: record.shape, values: decodeTensor(record) };
  const holes = decodeHoles(meta.holes, bound);
  return { field: new SphereField(model, tensors), model, transform, bound, container, holes, sheet: meta.sheet ?? null };
}

/** Signed distance (positive inside) of a key-sphere network in the normalized frame. */
export class SphereField {
  /**
   * @param model the network's configuration (format.js modelFromMap)
   * @param tensors name -> {shape, values: Float32Array}, every tensor of the model's layout
   */
  constructor(model, tensors) {
    for (const [name, shape] of tensorLayout(model)) {
      const found = tensors[name];
      if (!found || found.shape.length !== shape.length || found.shape.some((n, i) => n !== shape[i])) {
        throw new KscFormatError(`tensor '${name}' has shape ${found ? `(${found.shape})` : "missing"}, the model in the header needs (${shape})`);
      }
    }
    const M = model.spheres;
    const E = model.feature_dim;
    const Q = model.width;
    const spheres = tensors.spheres.values;
    for (let j = 0; j < M; j++) if (spheres[4 * j + 3] < 0) throw new KscFormatError("tensor 'spheres' has a negative radius");
    this.model = model;
    this.spheres = M;
    this.width = Q;
    this.spheresData = spheres;
    this.silu = model.activation === "silu";
    this.weighting = model.weighting;
    this.positionColumns = 3 + 6 * model.frequencies;
    this.scales = Array.from({ length: model.frequencies }, (_, k) => Math.PI * 2 ** k);

    // Sphere features Z (M, E): relu(W s + b) over (x, y, z, r) for DPFE, the stored latents for LPFE.
    const features = new Float64Array(M * E);
    if (model.features === "direct") {
      const w = tensors["sphere_layer.weight"].values;
      const b = tensors["sphere_layer.bias"].values;
      for (let j = 0; j < M; j++) {
        for (let e = 0; e < E; e++) {
          let z = b[e];
          for (let c = 0; c < 4; c++) z += w[e * 4 + c] * spheres[4 * j + c];
          features[j * E + e] = Math.max(z, 0);
        }
      }
    } else {
      features.set(tensors.latents.values);
    }
    this.features = features;
    this.hidden = Array.from({ length: model.layers }, (_, k) => ({
      weight: Float64Array.from(tensors[`hidden.${k}.weight`].values),
      bias: Float64Array.from(tensors[`hidden.${k}.bias`].values),
    }));
    this.outputWeight = Float64Array.from(tensors["output.weight"].values);
    this.outputBias = tensors["output.bias"].values[0];
    // The sphere feature enters the first layer only through Z @ W0[:, feature columns]^T (M, Q).
    const first = this.hidden[0].weight;
    const inputs = this.positionColumns + E;
    const featureWeights = new Float64Array(M * Q);
    for (let j = 0; j < M; j++) {
      for (let q = 0; q < Q; q++) {
        let s = 0;
        for (let e = 0; e < E; e++) s += features[j * E + e] * first[q * inputs + this.positionColumns + e];
        featureWeights[j * Q + q] = s;
      }
    }
    this.featureWeights = featureWeights;
    this.inputs = inputs;
    this.affinity = new Float64Array(M);
    this.layerA = new Float64Array(Q);
    this.layerB = new Float64Array(Q);
  }

  /** The first layer's term from [x, fourier(x)] along one axis (`dim`) for each coordinate of `axis`: (R, Q). */
  axisTable(axis, dim) {
    const Q = this.width;
    const first = this.hidden[0].weight;
    const table = new Float64Array(axis.length * Q);
    const columns = [dim];
    for (let k = 0; k < this.scales.length; k++) columns.push(3 + 6 * k + dim, 6 + 6 * k + dim);
    for (let r = 0; r < axis.length; r++) {
      const x = axis[r];
      const inputs = [x];
      for (const scale of this.scales) inputs.push(Math.sin(scale * x), Math.cos(scale * x));
      for (let q = 0; q < Q; q++) {
        let s = dim === 0 ? this.hidden[0].bias[q] : 0;
        for (let c = 0; c < columns.length; c++) s += first[q * this.inputs + columns[c]] * inputs[c];
        table[r * Q + q] = s;
      }
    }
    return table;
  }

  /** The first layer's term from [x, fourier(x)] plus its bias at one point, written into `out` (Q). */
  positionTerm(x, y, z, out) {
    const Q = this.width;
    const first = this.hidden[0].weight;
    const inputs = [x, y, z];
    for (const scale of this.scales) {
      inputs.push(Math.sin(scale * x), Math.sin(scale * y), Math.sin(scale * z));
      inputs.push(Math.cos(scale * x), Math.cos(scale * y), Math.cos(scale * z));
    }
    for (let q = 0; q < Q; q++) {
      let s = this.hidden[0].bias[q];
      for (let c = 0; c < inputs.length; c++) s += first[q * this.inputs + c] * inputs[c];
      out[q] = s;
    }
    return out;
  }

  /** Signed distance at (x, y, z), given the first layer's position term `position` (Q) there. */
  run(x, y, z, position) {
    const M = this.spheres;
    const Q = this.width;
    const s = this.spheresData;
    const affinity = this.affinity;
    const weighting = this.weighting === "paper" ? 0 : this.weighting === "inverse" ? 1 : 2;
    let total = 0;
    for (let j = 0; j < M; j++) {
      const dx = x - s[4 * j];
      const dy = y - s[4 * j + 1];
      const dz = z - s[4 * j + 2];
      let a = Math.sqrt(dx * dx + dy * dy + dz * dz) + 2 * s[4 * j + 3];
      if (weighting !== 0) {
        a = a > MIN_DISTANCE ? a : MIN_DISTANCE;
        a = weighting === 1 ? 1 / a : 1 / (a * a);
      }
      affinity[j] = a;
      total += a;
    }
    const silu = this.silu;
    let h = this.layerA;
    let next = this.layerB;
    const fw = this.featureWeights;
    for (let q = 0; q < Q; q++) h[q] = 0;
    let j = 0;
    for (; j + 1 < M; j += 2) {
      const a = affinity[j];
      const b = affinity[j + 1];
      const row = j * Q;
      const row2 = row + Q;
      for (let q = 0; q < Q; q++) h[q] += a * fw[row + q] + b * fw[row2 + q];
    }
    if (j < M) {
      const a = affinity[j];
      const row = j * Q;
      for (let q = 0; q < Q; q++) h[q] += a * fw[row + q];
    }
    const inverseTotal = 1 / total;
    for (let q = 0; q < Q; q++) {
      const v = h[q] * inverseTotal + position[q];
      h[q] = silu ? v / (1 + Math.exp(-v)) : v > 0 ? v : 0;
    }
    const layers = this.hidden;
    for (let k = 1; k < layers.length; k++) {
      const weight = layers[k].weight;
      const bias = layers[k].bias;
      // Two output rows at a time, two partial sums each: four independent chains of multiply-adds.
      let q = 0;
      for (; q + 1 < Q; q += 2) {
        const row = q * Q;
        const row2 = row + Q;
        let v0 = bias[q];
        let v1 = 0;
        let u0 = bias[q + 1];
        let u1 = 0;
        let c = 0;
        for (; c + 1 < Q; c += 2) {
          const h0 = h[c];
          const h1 = h[c + 1];
          v0 += weight[row + c] * h0;
          v1 += weight[row + c + 1] * h1;
          u0 += weight[row2 + c] * h0;
          u1 += weight[row2 + c + 1] * h1;
        }
        if (c < Q) {
          v0 += weight[row + c] * h[c];
          u0 += weight[row2 + c] * h[c];
        }
        const v = v0 + v1;
        const u = u0 + u1;
        next[q] = silu ? v / (1 + Math.exp(-v)) : v > 0 ? v : 0;
        next[q + 1] = silu ? u / (1 + Math.exp(-u)) : u > 0 ? u : 0;
      }
      for (; q < Q; q++) {
        let v = bias[q];
        const row = q * Q;
        for (let c = 0; c < Q; c++) v += weight[row + c] * h[c];
        next[q] = silu ? v / (1 + Math.exp(-v)) : v > 0 ? v : 0;
      }
      const swap = h;
      h = next;
      next = swap;
    }
    const w = this.outputWeight;
    let value = this.outputBias;
    for (let q = 0; q < Q; q++) value += w[q] * h[q];
    return value;
  }

  /** Signed distances (Float64Array, N) at `points` (flat x, y, z triples, length 3N). */
  values(points) {
    const n = points.length / 3;
    const out = new Float64Array(n);
    const position = new Float64Array(this.width);
    for (let i = 0; i < n; i++) {
      const [x, y, z] = [points[3 * i], points[3 * i + 1], points[3 * i + 2]];
      out[i] = this.run(x, y, z, this.positionTerm(x, y, z, position));
    }
    return out;
  }
}
