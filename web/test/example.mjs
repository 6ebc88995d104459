// node web/test/example.mjs URL OUT.png: open web/examples/three.html at URL in headless Chromium, serving the
// three.js files its import map takes from the CDN out of web/node_modules/three (the tests reach no network),
// wait until it has drawn the fine surface or failed, and save a picture of the page. Prints one JSON line:
// window.example ({state, error, ms, refinedMs, triangles, vertices}) and the page's errors. Used by tests/test_web.py and benchmarks/web.py.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { launchChromium } from "./chromium.mjs";

const CDN = "https://cdn.jsdelivr.net/npm/three@0.187.0/";
const three = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules", "three");
const [url, out] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 512, height: 512 }, deviceScaleFactor: 1 });
  const messages = [];
  page.on("pageerror", (error) => messages.push(`page error: ${error.message}`));
  await page.route(`${CDN}**`, (route) => {
    const path = join(three, new URL(route.request().url()).pathname.slice(new URL(CDN).pathname.length));
    return route.fulfill({ path, contentType: "text/javascript" });
  });
  await page.goto(url);
  await page.waitForFunction(() => ["refined", "error"].includes(window.example?.state), null, { timeout: 60000 });
  const result = await page.evaluate(() => window.example);
  writeFileSync(out, await page.screenshot());
  console.log(JSON.stringify({ ...result, messages }));
} finally {
  await browser.close();
}
