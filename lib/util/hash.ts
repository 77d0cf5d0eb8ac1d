/**
 * SHA-256 as lower-case hex (Web Crypto; Deno and browsers).
 * @example
 * ```ts
 * import { sha256Hex } from "./hash.ts";
 * console.log(await sha256Hex("abc")); // ba7816bf…
 * ```
 * @module
 */

/** SHA-256 of `data` (bytes, or a string as UTF-8), lower-case hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (x) => x.toString(16).padStart(2, "0")).join("");
}
