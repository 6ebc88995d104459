// Build the web code (npm run build):
// - the viewer page into the Python package (ksc/viewer/), where `ksc view` serves it from: index.html as it is,
//   and minified ES module bundles of the page (src/main.js) and its decoding worker (src/worker.js);
// - the npm package ksc-decoder into dist/ (`npm pack ./dist`): decode() (src/decode.js), the same worker and
//   the code they share,
//   the three.js loader (src/three.js, importing `three` and the decoder, bundling neither), their type
//   declarations and README from package/, and a package.json whose version is ksc's, read from ../pyproject.toml
//   (the one place the version is written).
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const viewer = join(here, "..", "ksc", "viewer");
const dist = join(here, "dist");

const options = { bundle: true, minify: true, format: "esm", target: "es2022", legalComments: "eof", logLevel: "warning" };
const bundle = (entry, outfile, extra = {}) => build({ ...options, entryPoints: [join(here, "src", entry)], outfile, ...extra });

// The loader imports the decoder as the package's own module, so that an app holds one copy of it.
const decoderAsSibling = {
  name: "decoder-as-sibling",
  setup(esbuild) {
    esbuild.onResolve({ filter: /^\.\/decode\.js$/ }, () => ({ path: "./ksc-decoder.js", external: true }));
  },
};

function kscVersion() {
  const pyproject = readFileSync(join(here, "..", "pyproject.toml"), "utf8");
  const project = pyproject.split(/^\[project\]$/m)[1]?.split(/^\[/m)[0] ?? "";
  const found = project.match(/^version\s*=\s*"([^"]+)"/m);
  if (!found) throw new Error("no version in pyproject.toml's [project] table");
  return found[1];
}

mkdirSync(viewer, { recursive: true });
await bundle("main.js", join(viewer, "ksc-viewer.js"));
await bundle("worker.js", join(viewer, "ksc-worker.js"));
copyFileSync(join(here, "index.html"), join(viewer, "index.html"));

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
// decode() and its worker share the reader and the network (core.js), which decode() loads only when it decodes
// without a worker: one chunk, split out by esbuild.
await build({
  ...options,
  entryPoints: { "ksc-decoder": join(here, "src", "decode.js"), "ksc-worker": join(here, "src", "worker.js") },
  outdir: dist,
  splitting: true,
  chunkNames: "ksc-core-[hash]",
});
await bundle("three.js", join(dist, "three.js"), { external: ["three"], plugins: [decoderAsSibling] });
for (const name of ["ksc-decoder.d.ts", "three.d.ts", "README.md"]) copyFileSync(join(here, "package", name), join(dist, name));
const manifest = {
  name: "ksc-decoder",
  version: kscVersion(),
  description: "Decode .ksc neural mesh files (key spheres + a small network) into triangle meshes, in a worker; a three.js loader",
  type: "module",
  license: "MIT",
  keywords: ["mesh", "compression", "3d", "sdf", "three", "loader", "ksc"],
  exports: {
    ".": { types: "./ksc-decoder.d.ts", default: "./ksc-decoder.js" },
    "./three": { types: "./three.d.ts", default: "./three.js" },
    "./package.json": "./package.json",
  },
  main: "./ksc-decoder.js",
  types: "./ksc-decoder.d.ts",
  files: ["ksc-*.js", "three.js", "ksc-decoder.d.ts", "three.d.ts", "README.md"],
  sideEffects: false,
  peerDependencies: { three: ">=0.150.0" },
  peerDependenciesMeta: { three: { optional: true } },
};
writeFileSync(join(dist, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
