// The JS decoder's view of `.ksc` files, for tests/test_web.py: reads {"files": [base64, ...], "points": [x, y, z, ...]}
// on stdin and prints one JSON list, per file {version, model, bound, values} (the field at the points, normalized
// frame) or {error} with the reader's one-line KscFormatError message, or {crash} for any other exception.
import { readFileSync } from "node:fs";

import { loadField } from "../src/field.js";

const { files, points = [] } = JSON.parse(readFileSync(0, "utf8"));
const results = files.map((encoded) => {
  try {
    const { field, model, bound, container } = loadField(new Uint8Array(Buffer.from(encoded, "base64")));
    const values = Array.from(field.values(points));
    if (!values.every(Number.isFinite)) return { error: "the network gives non-finite values" };
    return { version: container.version, model, bound, values };
  } catch (error) {
    return error.name === "KscFormatError" ? { error: error.message } : { crash: `${error.name}: ${error.message}` };
  }
});
console.log(JSON.stringify(results));
