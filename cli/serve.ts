/**
 * `deno task serve [--port N]`: build the page (web/app.ts → web/app.js) and serve it on
 * http://127.0.0.1:N/ — SNARM in the browser: load a bank and a head, drop images.
 * @module
 */
import { parseArgs } from "node:util";
import { buildPage, servePage } from "../web/server.ts";

const { values } = parseArgs({ options: { port: { type: "string", default: "8000" } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: --port expects 0..65535, got "${values.port}"`);
  Deno.exit(2);
}
await buildPage();
const server = servePage(port);
console.log(
  `snarm page: http://127.0.0.1:${server.addr.port}/ (WebGPU: Chrome/Edge; chromium needs ` +
    `--enable-unsafe-webgpu). Ctrl-C stops.`,
);
