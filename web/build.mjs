// Build the page into the Python package (ksc/viewer/), where `ksc view` serves it from:
// index.html as it is, and minified ES module bundles of the page (src/main.js) and its decoding worker
// (src/worker.js, with the reader and the network).
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "ksc", "viewer");
mkdirSync(out, { recursive: true });
for (const [entry, bundle] of [["main.js", "ksc-viewer.js"], ["worker.js", "ksc-worker.js"]]) {
  await build({
    entryPoints: [join(here, "src", entry)],
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    outfile: join(out, bundle),
    legalComments: "eof",
    logLevel: "warning",
  });
}
copyFileSync(join(here, "index.html"), join(out, "index.html"));
