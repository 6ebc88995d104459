// node web/test/browser.mjs URL OUT.png [SIZE [ORBIT_FRAMES WIDTHxHEIGHT]]: open the viewer page at URL in
// headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM), wait until it has drawn the fine surface or
// shown an error, and save a SIZE x SIZE picture of its canvas (default 512). With ORBIT_FRAMES, then also time
// that many frames orbiting the shape with the canvas at WIDTHxHEIGHT. Prints one JSON line: {state, error,
// timings, triangles, pageLoadMs, downloadBytes, messages, orbitMs}. With $KSC_PICK set to a file's path, the file
// is opened through the page's file picker instead of ?file=. Used by tests/test_web.py and benchmarks/web.py.
import { writeFileSync } from "node:fs";

import { launchChromium } from "./chromium.mjs";

const [url, out, sizeText = "512", orbitFrames = "0", orbitViewport = "1280x720"] = process.argv.slice(2);
const size = Number(sizeText);
const [orbitWidth, orbitHeight] = orbitViewport.split("x").map(Number);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: size, height: size + 200 }, deviceScaleFactor: 1 });
  let downloadBytes = 0;
  page.on("response", async (response) => {
    if (!response.url().endsWith(".ksc")) {
      try {
        downloadBytes += (await response.body()).length;
      } catch {
        // a response without a body (a redirect) counts nothing
      }
    }
  });
  const messages = [];
  page.on("pageerror", (error) => messages.push(`page error: ${error.message}`));
  const started = Date.now();
  await page.goto(url);
  if (process.env.KSC_PICK) await page.setInputFiles("#picker", process.env.KSC_PICK);
  await page.waitForFunction(() => ["refined", "error"].includes(window.kscViewer?.state), null, { timeout: 60000 });
  const pageLoadMs = Date.now() - started;
  const result = await page.evaluate(() => {
    const { state, error, timings, triangles } = window.kscViewer;
    return { state, error, timings, triangles, status: document.getElementById("status").textContent };
  });
  const canvas = page.locator("#view");
  await page.evaluate((px) => {
    const view = document.getElementById("view");
    Object.assign(view.style, { flex: "none", width: `${px}px`, height: `${px}px` });
    window.kscViewer.render?.();
  }, size);
  writeFileSync(out, await canvas.screenshot());
  let orbitMs = null;
  if (Number(orbitFrames) > 0 && result.state === "refined") {
    await page.setViewportSize({ width: orbitWidth, height: orbitHeight + 200 });
    orbitMs = await page.evaluate(
      ([frames, width, height]) => {
        const view = document.getElementById("view");
        Object.assign(view.style, { width: `${width}px`, height: `${height}px` });
        window.kscViewer.render();
        return window.kscViewer.orbitTiming(frames);
      },
      [Number(orbitFrames), orbitWidth, orbitHeight],
    );
  }
  console.log(JSON.stringify({ ...result, pageLoadMs, downloadBytes, messages, orbitMs }));
} finally {
  await browser.close();
}
