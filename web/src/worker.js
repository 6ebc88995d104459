// The decoding thread of the viewer page and of ksc-decoder's decode(): the steps of core.js's decodeSteps, each
// posted as soon as it exists, so that the page keeps drawing while the worker works.
// In: {bytes: Uint8Array, cells: 128, sizes: [64], levels: false}. Out: decodeSteps' messages.

import { decodeSteps } from "./core.js";

self.onmessage = ({ data: { bytes, cells, sizes, levels = false } }) => {
  decodeSteps(bytes, cells, sizes, levels, (message, transfer) => self.postMessage(message, transfer));
};
