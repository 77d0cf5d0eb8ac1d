/**
 * Building a bank with a progress bar (terminal: `cli-progress`), for the command-line jobs; a
 * module of its own so that lib/bank/bank.ts stays free of terminal code (the browser page
 * imports it).
 * @module
 */
import { type Bank, buildBank, type BuildBankOptions, type FeatureSource } from "./bank.ts";
import { noProgress, type Progress, startProgress } from "../util/progress.ts";

/**
 * {@link buildBank} with a progress bar of its coreset stage, `coreset (<name>)` (when `show`);
 * `before` (e.g. the bar of the embedding that feeds `features`) is stopped when it starts.
 * @throws as {@link buildBank}.
 */
export async function buildBankWithProgress(
  features: FeatureSource,
  opts: BuildBankOptions,
  progress: { name: string; show: boolean; before?: Progress },
): Promise<Bank> {
  const before = progress.before ?? noProgress;
  let bar = noProgress, done = 0;
  try {
    return await buildBank(features, {
      ...opts,
      onProgress: (p) => {
        opts.onProgress?.(p);
        if (p.stage !== "coreset" || !progress.show || p.total <= 0) return;
        if (bar === noProgress) {
          before.stop();
          bar = startProgress(`coreset (${progress.name})`, p.total);
        }
        bar.tick(p.done - done);
        done = p.done;
      },
    });
  } finally {
    before.stop();
    bar.stop();
  }
}
