// node web/test/package-decode.mjs FILE.ksc [CELLS]: decode FILE with the built package (web/dist/ksc-decoder.js,
// in the calling thread) and print one JSON line {positions, normals, indices, info}. Used by
// benchmarks/web_package.py.
import { readFileSync } from "node:fs";

import { decode } from "../dist/ksc-decoder.js";

const [path, cells = "128"] = process.argv.slice(2);
const mesh = await decode(readFileSync(path), { cells: Number(cells) });
const plain = (array) => Array.from(array);
console.log(JSON.stringify({ positions: plain(mesh.positions), normals: plain(mesh.normals), indices: plain(mesh.indices), info: mesh.info }));
