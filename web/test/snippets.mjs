// Runs JavaScript snippets as an app would, in headless Chromium: each one as the module script of its own page
// at http://app.test/, with an import map giving "three" (web/node_modules/three) and "ksc-decoder" (the package
// folder given: an installed tarball), and a .ksc file served as /bunny.ksc. `scene` (a THREE.Scene) is defined
// for snippets that add to one. Reads {package, file, snippets: [{code, report}]} on stdin, where `report` is an
// expression evaluated after the snippet; prints one JSON list, per snippet {outcome: report's value} or {error}.
// Used by tests/test_web_package.py for the README's snippets.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { launchChromium } from "./chromium.mjs";

const three = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules", "three");
const { package: decoder, file, snippets } = JSON.parse(readFileSync(0, "utf8"));
const importMap = {
  imports: {
    three: "/three/build/three.module.js",
    "ksc-decoder": "/ksc-decoder/ksc-decoder.js",
    "ksc-decoder/three": "/ksc-decoder/three.js",
  },
};

function page(code, report) {
  const lines = code.split("\n");
  const imports = lines.filter((line) => line.startsWith("import "));
  const body = lines.filter((line) => !line.startsWith("import "));
  const script = [
    ...imports,
    'const scene = new (await import("three")).Scene();',
    "try {",
    ...body,
    `  window.outcome = { outcome: ${report} };`,
    "} catch (error) {",
    "  window.outcome = { error: `${error.name}: ${error.message}` };",
    "}",
  ].join("\n");
  return `<!doctype html><html><head><script type="importmap">${JSON.stringify(importMap)}</script></head>
<body><script type="module">\n${script}\n</script></body></html>`;
}

const browser = await launchChromium();
const results = [];
try {
  for (const { code, report } of snippets) {
    const tab = await browser.newPage();
    const errors = [];
    tab.on("pageerror", (error) => errors.push(error.message));
    await tab.route("http://app.test/**", (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === "/index.html") return route.fulfill({ body: page(code, report), contentType: "text/html" });
      if (path === "/bunny.ksc") return route.fulfill({ path: file, contentType: "application/octet-stream" });
      for (const [prefix, folder] of [["/three/", three], ["/ksc-decoder/", decoder]]) {
        if (path.startsWith(prefix)) return route.fulfill({ path: join(folder, path.slice(prefix.length)), contentType: "text/javascript" });
      }
      return route.fulfill({ status: 404, body: "not found" });
    });
    await tab.goto("http://app.test/index.html");
    try {
      await tab.waitForFunction(() => window.outcome !== undefined, null, { timeout: 60000 });
      results.push(await tab.evaluate(() => window.outcome));
    } catch {
      results.push({ error: errors.join("; ") || "the snippet never finished" });
    }
    await tab.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
