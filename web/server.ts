/**
 * Deno side of the page: build `web/app.js` from `web/app.ts` (`deno bundle`, esbuild inside,
 * browser platform) and serve the repository read-only on 127.0.0.1 (the page fetches the WGSL
 * files, onnxruntime-web's .wasm, plotly and the embedded model relative to itself).
 * @module
 */
import { fileURLToPath } from "node:url";
import { extname, join, normalize, resolve } from "node:path";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".wgsl": "text/plain; charset=utf-8",
  ".json": "application/json",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".css": "text/css",
};

/**
 * Bundle web/app.ts → web/app.js.
 * @throws {Error} with deno bundle's output when it fails.
 */
export async function buildPage(): Promise<string> {
  const out = join(ROOT, "web", "app.js");
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--external",
      "npm:onnxruntime-node@1.30.0",
      "-o",
      out,
      join(ROOT, "web", "app.ts"),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`deno bundle web/app.ts failed:\n${new TextDecoder().decode(r.stderr)}`);
  }
  return out;
}

/**
 * Serve the repository (and `mounts`: URL prefix → folder) on 127.0.0.1:`port` (0: any free
 * port). Paths outside the served folders are refused.
 */
export function servePage(
  port = 8000,
  mounts: Record<string, string> = {},
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    let base = ROOT, rel = path;
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (path.startsWith(prefix)) [base, rel] = [resolve(dir), path.slice(prefix.length)];
    }
    if (rel === "/" || rel === "") {
      return Response.redirect(new URL("/web/index.html", req.url), 302);
    }
    const file = normalize(join(base, rel));
    if (!file.startsWith(base)) return new Response("forbidden", { status: 403 });
    try {
      const body = await Deno.readFile(file);
      return new Response(body, {
        headers: {
          "content-type": TYPES[extname(file)] ?? "application/octet-stream",
          "cache-control": "no-store",
        },
      });
    } catch {
      return new Response(`not found: ${path}`, { status: 404 });
    }
  });
}
