/**
 * Progress bars for long stages (embedding, coreset, search), using `cli-progress`.
 * On a non-TTY stderr (CI logs, notebooks) it prints a plain line every ~10% instead.
 * @module
 */
import cliProgress from "npm:cli-progress@3.12.0";

/** A started progress bar: call `tick()` per unit of work and `stop()` at the end. */
export interface Progress {
  tick(n?: number, info?: string): void;
  stop(): void;
}

/** Silent progress (for library calls that should not print). */
export const noProgress: Progress = { tick() {}, stop() {} };

/**
 * Start a progress bar titled `label` for `total` units.
 * @param quiet when true, returns {@link noProgress}.
 */
export function startProgress(label: string, total: number, quiet = false): Progress {
  if (quiet || total <= 0) return noProgress;
  const isTty = Deno.stderr.isTerminal();
  if (isTty) {
    const bar = new cliProgress.SingleBar({
      format: `${
        label.padEnd(22)
      } [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} {info}`,
      stream: process.stderr,
      hideCursor: true,
      barsize: 30,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { info: "" });
    return {
      tick(n = 1, info = "") {
        bar.increment(n, { info });
      },
      stop() {
        bar.stop();
      },
    };
  }
  let done = 0;
  let nextPct = 10;
  const t0 = performance.now();
  const line = (msg: string) => Deno.stderr.writeSync(new TextEncoder().encode(msg + "\n"));
  return {
    tick(n = 1) {
      done += n;
      const pct = (100 * done) / total;
      if (pct >= nextPct || done === total) {
        const el = (performance.now() - t0) / 1000;
        const eta = done > 0 ? (el * (total - done)) / done : 0;
        line(
          `${label}: ${done}/${total} (${pct.toFixed(0)}%), ${el.toFixed(1)} s, ETA ${
            eta.toFixed(0)
          } s`,
        );
        while (nextPct <= pct) nextPct += 10;
      }
    },
    stop() {},
  };
}
