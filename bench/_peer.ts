/**
 * A Python peer benchmark (Debian's /usr/bin/python3 with its packages) in the same run as ours,
 * timed in rounds that alternate with ours: `OMP_WAIT_POLICY=PASSIVE`. Shared by the knn (faiss)
 * and head (PyTorch) benches.
 * @module
 */
import { fileURLToPath } from "node:url";

/** Debian's python3 running `script` (a file next to the benches) with `args`, every stream piped. */
function peerCommand(script: string, args: string[]): Deno.Command {
  return new Deno.Command("/usr/bin/python3", {
    args: [fileURLToPath(new URL(script, import.meta.url)), ...args],
    env: { OMP_WAIT_POLICY: "PASSIVE" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * A peer that times forwards on request, for measurements in alternating rounds: started with
 * `args`, it prints its check lines and `ready`, then answers each line `W R` on its stdin with W
 * untimed and R timed forwards, `t <s> <s> …`. Rounds of ours and of the peer's, alternating,
 * expose both to the same machine state (this VM's speed drifts by ±20 % between runs seconds
 * apart); each round warms up first (forward by forward alternation left each side's caches cold:
 * the native head ran ~40 % slower).
 */
export interface PairedPeer {
  /** The peer's times of `reps` forwards after `warmup` untimed ones, in ms. */
  times(warmup: number, reps: number): Promise<number[]>;
  /** End the peer (closes its stdin) and wait for it. */
  close(): Promise<void>;
}

/**
 * Start `script` in paired mode (see {@link PairedPeer}); its lines before `ready` are echoed.
 * @returns null (with a "not run" line) when it could not start or check.
 */
export async function startPairedPeer(
  script: string,
  args: string[],
  what: string,
  install: string,
  timeoutMs = 600_000,
): Promise<PairedPeer | null> {
  let child: Deno.ChildProcess;
  try {
    child = peerCommand(script, args).spawn();
  } catch (e) {
    console.log(`${what}: not run (${(e as Error).message})`);
    return null;
  }
  // stderr is drained as it comes (a full pipe would block the peer), its tail kept for messages
  let errTail = "";
  const drained = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      errTail = (errTail + chunk).slice(-4000);
    }
  })().catch(() => {});
  const lastError = () => errTail.trim().split("\n").pop() || "no output on stderr";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  let pending = "";
  /** The peer's next stdout line; null at its end; an Error after `timeoutMs`. */
  const nextLine = async (): Promise<string | null> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer in ${timeoutMs / 1000} s (${lastError()})`)),
        timeoutMs,
      );
    });
    try {
      while (!pending.includes("\n")) {
        const { value, done } = await Promise.race([reader.read(), timeout]);
        if (done) return null;
        pending += value;
      }
    } finally {
      clearTimeout(timer);
    }
    const i = pending.indexOf("\n");
    const line = pending.slice(0, i);
    pending = pending.slice(i + 1);
    return line;
  };
  const close = async () => {
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch { /* already ended */ }
    await child.status;
    await drained;
  };
  try {
    for (;;) {
      const line = await nextLine();
      if (line === "ready") break;
      if (line === null) {
        // ended before `ready`: a missing module gets the install hint, anything else its status
        const err = lastError();
        const status = await Promise.race([
          child.status,
          new Promise<null>((r) => setTimeout(() => r(null), 5000)),
        ]);
        const how = !status
          ? "stdout closed"
          : `exit ${status.signal ? `signal ${status.signal}` : `code ${status.code}`}`;
        throw new Error(
          /ModuleNotFoundError|No module named/.test(errTail)
            ? `${err}; Debian: apt-get install -y ${install}`
            : `${err}; ${how}`,
        );
      }
      console.log(line);
    }
  } catch (e) {
    console.log(`${what}: not run (${(e as Error).message})`);
    await close();
    return null;
  }
  return {
    async times(warmup: number, reps: number) {
      await writer.write(new TextEncoder().encode(`${warmup} ${reps}\n`));
      const line = await nextLine();
      const v = line?.startsWith("t ") ? line.slice(2).split(" ").map(Number) : [];
      if (v.length !== reps || !v.every((x) => x > 0)) {
        throw new Error(
          line === null
            ? `it ended (${lastError()})`
            : `unexpected answer ${JSON.stringify(line)} (stderr: ${lastError()})`,
        );
      }
      return v.map((x) => x * 1000);
    },
    close,
  };
}
