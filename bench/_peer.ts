/**
 * Run a Python peer benchmark (Debian's /usr/bin/python3 with its packages) in the same run as
 * ours: `OMP_WAIT_POLICY=PASSIVE`, its stdout echoed. Shared by the knn (faiss) and head (PyTorch)
 * benches.
 * @module
 */

/**
 * Run `script` (a file next to the benches) with `args`.
 * @param what the peer's name in the "not run" line; @param install the Debian packages it needs.
 * @returns the script's stdout lines, or null (with a "not run" line) when it could not run.
 */
export async function runPeer(
  script: string,
  args: string[],
  what: string,
  install: string,
): Promise<string[] | null> {
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: [new URL(script, import.meta.url).pathname, ...args],
      env: { OMP_WAIT_POLICY: "PASSIVE" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) {
      const err = new TextDecoder().decode(r.stderr).trim().split("\n").pop();
      console.log(`${what}: not run (${err}; Debian: apt-get install -y ${install})`);
      return null;
    }
    const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
    for (const line of lines) console.log(line);
    return lines;
  } catch (e) {
    console.log(`${what}: not run (${(e as Error).message})`);
    return null;
  }
}
