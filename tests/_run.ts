/**
 * Shared test helper: run a Deno script of this repository as a subprocess (`deno run -A`), with
 * `XDG_RUNTIME_DIR=/tmp` (WebGPU on lavapipe) plus `env`; returns exit code, signal and output.
 */
const td = new TextDecoder();

/** Output of {@link runDeno}. */
export interface RunResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** `deno run -A <args…>`. */
export async function runDeno(
  args: string[],
  env: Record<string, string> = {},
): Promise<RunResult> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: "/tmp", ...env },
  }).output();
  return {
    code: r.code,
    signal: r.signal,
    stdout: td.decode(r.stdout),
    stderr: td.decode(r.stderr),
  };
}

/** Path of a file of this repository, from the tests folder. */
export function repoPath(rel: string): string {
  return new URL(`../${rel}`, import.meta.url).pathname;
}
