/**
 * Per-category metric table (arquero) with a `mean` row, and a text formatter for it.
 *
 * The dataset number is the mean over categories (`snarm-method.md` §9, "Averaging": one run per
 * class, dataset = mean over classes). A NaN metric of a category (e.g. no GT masks) is left out
 * of that metric's mean; the mean is NaN only when every category is NaN.
 * @module
 */

// Full npm: specifier so the toolkit also works when imported by URL (project rule).
// deno-lint-ignore no-import-prefix
import * as aq from "npm:arquero@8.0.3";
import { METRIC_KEYS } from "./compute.ts";

/** An arquero column table. */
export type MetricsTable = aq.ColumnTable;

/** One table row: the category name and its metric values (fractions in [0, 1] or NaN). */
export interface MetricsRow {
  category: string;
  [metric: string]: number | string;
}

/** The category label of the mean row. */
export const MEAN_ROW = "mean";

/** Short column headers for the metric keys. */
export const METRIC_LABELS: Readonly<Record<string, string>> = {
  image_auroc: "I-AUROC",
  image_ap: "I-AP",
  image_f1max: "I-F1max",
  pixel_auroc: "P-AUROC",
  pixel_ap: "P-AP",
  pixel_f1max: "P-F1max",
  aupro: "AUPRO",
};

/** Mean of the non-NaN values; NaN when there are none. */
export function nanMean(values: ArrayLike<number>): number {
  let s = 0, k = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isNaN(v)) {
      s += v;
      k++;
    }
  }
  return k === 0 ? NaN : s / k;
}

/**
 * Build the table: column `category`, then the metric columns (the known keys of
 * {@link METRIC_KEYS} first, in that order, then any other metric in first-seen order); one row
 * per category in input order, plus a last row `mean` (mean over categories ignoring NaN).
 * A metric missing from a row counts as NaN.
 *
 * @throws {Error} when a category is empty, repeated or named `mean`, or a metric value is not a
 *   number.
 */
export function metricsTable(rows: readonly MetricsRow[]): MetricsTable {
  const seen = new Set<string>();
  const extra: string[] = [];
  for (const row of rows) {
    const c = row.category;
    if (typeof c !== "string" || c === "") throw new Error("metricsTable: row without a category");
    if (c === MEAN_ROW) throw new Error(`metricsTable: "${MEAN_ROW}" is reserved for the mean row`);
    if (seen.has(c)) throw new Error(`metricsTable: category "${c}" appears twice`);
    seen.add(c);
    for (const [k, v] of Object.entries(row)) {
      if (k === "category") continue;
      if (typeof v !== "number") {
        throw new Error(`metricsTable: ${c}.${k} is ${typeof v}, expected a number`);
      }
      if (!(METRIC_KEYS as readonly string[]).includes(k) && !extra.includes(k)) extra.push(k);
    }
  }
  const metrics = [
    ...METRIC_KEYS.filter((k) => rows.some((r) => k in r)),
    ...extra,
  ];
  const columns: Record<string, (string | number)[]> = {
    category: [...rows.map((r) => r.category), MEAN_ROW],
  };
  for (const k of metrics) {
    const vals = rows.map((r) => (k in r ? r[k] as number : NaN));
    columns[k] = [...vals, nanMean(vals)];
  }
  return aq.table(columns, ["category", ...metrics]);
}

/** Options for {@link formatTable}. */
export interface FormatOptions {
  /** `"percent"`: 100·x with 2 decimals (default); `"fraction"`: x with 4 decimals. */
  style?: "percent" | "fraction";
  /** Use the short headers of {@link METRIC_LABELS} (default true). */
  shortHeaders?: boolean;
}

/**
 * Format a metric table as an aligned Markdown table (readable as plain text). NaN is shown as
 * `n/a`. Numeric columns are right-aligned.
 */
export function formatTable(table: MetricsTable, opts: FormatOptions = {}): string {
  const style = opts.style ?? "percent";
  const short = opts.shortHeaders ?? true;
  const names = table.columnNames();
  const header = names.map((n) => (short && METRIC_LABELS[n]) || n);
  const cells: string[][] = [];
  for (let r = 0; r < table.numRows(); r++) {
    cells.push(names.map((n) => {
      const v = table.get(n, r);
      if (typeof v !== "number") return String(v);
      if (Number.isNaN(v)) return "n/a";
      return style === "percent" ? (100 * v).toFixed(2) : v.toFixed(4);
    }));
  }
  const width = header.map((h, j) => Math.max(h.length, 3, ...cells.map((row) => row[j].length)));
  const line = (row: string[]) =>
    "| " + row.map((c, j) => (j === 0 ? c.padEnd(width[j]) : c.padStart(width[j]))).join(" | ") +
    " |";
  const rule = "|" +
    width.map((w, j) => (j === 0 ? ":" + "-".repeat(w + 1) : "-".repeat(w + 1) + ":"))
      .join("|") +
    "|";
  const out = [line(header), rule];
  for (const row of cells) out.push(line(row));
  return out.join("\n");
}
