// node web/test/example.mjs FILE.ksc OUT.png: open web/examples/three.html on FILE.ksc in headless Chromium, as
// http://app.test/web/examples/three.html?file=/scratch/NAME, with the repository's files served under
// http://app.test/ and the three.js files its import map takes from the CDN served out of web/node_modules/three
// (the tests reach no network); wait until it has drawn the fine surface or failed, and save a picture of the
// page. Prints one JSON line: window.example ({state, error, ms, refinedMs, triangles, vertices}) and the page's
// errors. Used by tests/test_web_package.py and benchmarks/web_package.py.
import { basename, dirname, join, resolve } from "node:path";
import { existsSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { launchChromium } from "./chromium.mjs";

const CDN = "https://cdn.jsdelivr.net/npm/three@0.187.0/";
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const three = join(repo, "web", "node_modules", "three");
const TYPES = { ".js": "text/javascript", ".html": "text/html", ".ksc": "application/octet-stream" };

const [file, out] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 512, height: 512 }, deviceScaleFactor: 1 });
  const messages = [];
  page.on("pageerror", (error) => messages.push(`page error: ${error.message}`));
  const serve = (route, path) =>
    existsSync(path)
      ? route.fulfill({ path, contentType: TYPES[path.slice(path.lastIndexOf("."))] ?? "application/octet-stream" })
      : route.fulfill({ status: 404, body: "not found" });
  await page.route(`${CDN}**`, (route) => serve(route, join(three, new URL(route.request().url()).pathname.slice(new URL(CDN).pathname.length))));
  await page.route("http://app.test/**", (route) => {
    const path = decodeURIComponent(new URL(route.request().url()).pathname);
    if (path === `/scratch/${basename(file)}`) return serve(route, file);
    const local = join(repo, path);
    return local.startsWith(repo) ? serve(route, local) : route.fulfill({ status: 404 });
  });
  await page.goto(`http://app.test/web/examples/three.html?file=/scratch/${encodeURIComponent(basename(file))}`);
  await page.waitForFunction(() => ["refined", "error"].includes(window.example?.state), null, { timeout: 60000 });
  const result = await page.evaluate(() => window.example);
  writeFileSync(out, await page.screenshot());
  console.log(JSON.stringify({ ...result, messages }));
} finally {
  await browser.close();
}
