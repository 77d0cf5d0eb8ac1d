/**
 * Fault points for crash tests: `SNARM_FAULT=<point>[,<point>…]` makes the process act when it
 * reaches a named point — `<point>` alone (or `<point>:kill`) sends itself SIGKILL there, as a
 * power cut or `kill -9` would; `<point>:sleep<ms>` waits that long (to hold a lock or a stage
 * open while a test acts). Unset (the normal case) every point is a no-op.
 *
 * Points: `bank-build` (after the first training image is embedded), `bank-write` (bank temp
 * file written, not yet renamed), `head-write`, `commit-marked` (stage complete), `commit-carry`
 * (after moving one kept entry into the stage), `commit-aside` (old outputs renamed aside, new
 * ones not yet in), `commit-swapped` (new outputs in, old not yet removed), `before-commit`.
 * @module
 */

let table: Map<string, string> | null = null;

function faults(): Map<string, string> {
  if (table) return table;
  table = new Map();
  let spec: string | undefined;
  try {
    spec = Deno.env.get("SNARM_FAULT");
  } catch { /* no env permission: no faults */ }
  for (const item of (spec ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const [point, action = "kill"] = item.split(":");
    table.set(point, action);
  }
  return table;
}

/** Act at fault point `point` if `SNARM_FAULT` names it (see the module doc); else return. */
export async function hitFault(point: string): Promise<void> {
  const action = faults().get(point);
  if (action === undefined) return;
  if (action === "kill") {
    console.error(`snarm: fault point ${point}: SIGKILL`);
    Deno.kill(Deno.pid, "SIGKILL");
    await new Promise(() => {}); // never resumes
  }
  const m = /^sleep(\d+)$/.exec(action);
  if (m) {
    console.error(`snarm: fault point ${point}: sleeping ${m[1]} ms`);
    await new Promise((r) => setTimeout(r, Number(m[1])));
    return;
  }
  throw new Error(`SNARM_FAULT: unknown action "${action}" at point ${point}`);
}
