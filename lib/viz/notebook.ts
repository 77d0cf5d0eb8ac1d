/**
 * Notebook housekeeping for `deno task notebooks`: run a notebook headless with
 * `jupyter nbconvert --to notebook --execute` on the Deno kernel (environment.md §6), check the
 * executed copy (no error output, plotly outputs present), and keep the committed notebooks in one
 * form (outputs cleared, no execution counts, every cell with an id, kernel `deno`).
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../io/safetensors.ts";
import { PLOTLY_MIME } from "./jupyter.ts";

/** The parts of an nbformat-4 notebook used here. */
export interface Notebook {
  cells: NotebookCell[];
  metadata: { kernelspec?: { name?: string; display_name?: string; language?: string } };
  nbformat: number;
  nbformat_minor: number;
}

/** One notebook cell. */
export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  source: string | string[];
  outputs?: NotebookOutput[];
  execution_count?: number | null;
  metadata?: Record<string, unknown>;
}

/** One cell output. */
export interface NotebookOutput {
  output_type: "stream" | "display_data" | "execute_result" | "error";
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

/** Result of {@link checkExecutedNotebook}. */
export interface ExecutedCheck {
  /** Code cells in the notebook. */
  codeCells: number;
  /** Code cells without an execution count (not run). */
  notExecuted: number;
  /** One line per error output: `cell <i>: <ename>: <evalue>`. */
  errors: string[];
  /** Outputs carrying `application/vnd.plotly.v1+json`. */
  plotlyOutputs: number;
  /** Outputs carrying `text/html`. */
  htmlOutputs: number;
}

function text(src: string | string[] | undefined): string {
  return Array.isArray(src) ? src.join("") : src ?? "";
}

/**
 * Parse notebook JSON (nbformat 4).
 * @throws {Error} naming `what` when it is not JSON or not an nbformat-4 notebook.
 */
export function parseNotebook(json: string, what = "notebook"): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(json);
  } catch (e) {
    throw new Error(`${what}: not JSON (${(e as Error).message})`);
  }
  if (!nb || nb.nbformat !== 4 || !Array.isArray(nb.cells)) {
    throw new Error(`${what}: expected an nbformat 4 notebook with a cells array`);
  }
  return nb;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Check an executed notebook: error outputs (with the exception name and message), plotly outputs,
 * cells that did not run.
 */
export function checkExecutedNotebook(nb: Notebook): ExecutedCheck {
  const out: ExecutedCheck = {
    codeCells: 0,
    notExecuted: 0,
    errors: [],
    plotlyOutputs: 0,
    htmlOutputs: 0,
  };
  nb.cells.forEach((c, i) => {
    if (c.cell_type !== "code") return;
    out.codeCells++;
    if (c.execution_count === null || c.execution_count === undefined) out.notExecuted++;
    for (const o of c.outputs ?? []) {
      if (o.output_type === "error") {
        const tb = (o.traceback ?? []).join("\n").replace(ANSI, "").split("\n").filter(Boolean);
        out.errors.push(
          `cell ${i}: ${o.ename ?? "Error"}: ${(o.evalue ?? "").replace(ANSI, "")}${
            tb.length ? `\n    ${tb.slice(0, 6).join("\n    ")}` : ""
          }`,
        );
      }
      if (o.data && PLOTLY_MIME in o.data) out.plotlyOutputs++;
      if (o.data && "text/html" in o.data) out.htmlOutputs++;
    }
  });
  return out;
}

/**
 * Problems that keep a committed notebook from the stored form: outputs or execution counts
 * present, a cell without an id, a kernel other than `deno`. Empty when the notebook is clean.
 */
export function storedNotebookProblems(nb: Notebook): string[] {
  const p: string[] = [];
  if (nb.metadata?.kernelspec?.name !== "deno") {
    p.push(`kernelspec.name is ${JSON.stringify(nb.metadata?.kernelspec?.name)}, expected "deno"`);
  }
  nb.cells.forEach((c, i) => {
    if (!c.id) p.push(`cell ${i} has no id`);
    if (c.cell_type !== "code") return;
    if (c.outputs?.length) {
      p.push(`cell ${i} has ${c.outputs.length} outputs (store notebooks cleared)`);
    }
    if (c.execution_count !== null && c.execution_count !== undefined) {
      p.push(`cell ${i} has execution_count ${c.execution_count}`);
    }
  });
  return p;
}

/** A copy of the notebook with every output and execution count removed. */
export function clearNotebookOutputs(nb: Notebook): Notebook {
  const copy = structuredClone(nb);
  for (const c of copy.cells) {
    if (c.cell_type !== "code") continue;
    c.outputs = [];
    c.execution_count = null;
  }
  return copy;
}

/** Serialise a notebook the way Jupyter stores it (1-space indent, trailing newline). */
export function formatNotebook(nb: Notebook): string {
  return JSON.stringify(nb, null, 1) + "\n";
}

/** The source text of every code cell, in order. */
export function codeSources(nb: Notebook): string[] {
  return nb.cells.filter((c) => c.cell_type === "code").map((c) => text(c.source));
}

/** Options of {@link executeNotebook}. */
export interface ExecuteOptions {
  /** Folder of the executed copy (default: a new temporary folder). */
  outDir?: string;
  /** Per-cell timeout in s (default 600). */
  cellTimeoutS?: number;
  /** The `jupyter` command (default `jupyter`). */
  jupyter?: string;
  /** Kernel name (default `deno`). */
  kernel?: string;
}

/** Result of {@link executeNotebook}. */
export interface ExecuteResult {
  /** The notebook that was run. */
  path: string;
  /** The executed copy (null when nbconvert wrote none). */
  executedPath: string | null;
  /** Wall-clock seconds of the nbconvert run. */
  seconds: number;
  /** nbconvert exit code. */
  code: number;
  /** Last lines of nbconvert's stderr (without the kernel's "unstable" banner). */
  stderrTail: string;
  /** Check of the executed copy (null when there is none). */
  check: ExecutedCheck | null;
  /** True when nbconvert succeeded, every code cell ran and no cell raised. */
  ok: boolean;
}

/**
 * Execute a notebook headless: `jupyter nbconvert --to notebook --execute --allow-errors` with the
 * Deno kernel, in the notebook's own folder (the kernel's cwd), then check the executed copy.
 * `--allow-errors` makes nbconvert keep going and write the copy, so every failing cell is reported.
 * @throws {Error} when `jupyter` cannot be started (names the command and the Debian packages).
 */
export async function executeNotebook(
  path: string,
  opts: ExecuteOptions = {},
): Promise<ExecuteResult> {
  const abs = resolve(path);
  const outDir = opts.outDir
    ? resolve(opts.outDir)
    : await Deno.makeTempDir({ prefix: "snarm-nb-" });
  await Deno.mkdir(outDir, { recursive: true });
  const jupyter = opts.jupyter ?? "jupyter";
  const name = basename(abs);
  const outPath = join(outDir, name);
  await Deno.remove(outPath).catch(() => {});
  const cmd = new Deno.Command(jupyter, {
    args: [
      "nbconvert",
      "--to",
      "notebook",
      "--execute",
      "--allow-errors",
      `--ExecutePreprocessor.kernel_name=${opts.kernel ?? "deno"}`,
      `--ExecutePreprocessor.timeout=${opts.cellTimeoutS ?? 600}`,
      "--output-dir",
      outDir,
      "--output",
      name,
      abs,
    ],
    cwd: dirname(abs),
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const t0 = performance.now();
  let res: Deno.CommandOutput;
  try {
    res = await cmd.output();
  } catch (e) {
    throw new Error(
      `cannot run "${jupyter}" (${(e as Error).message}); install it (Debian: apt-get install -y ` +
        "--no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client jupyter-core) " +
        "and the Deno kernel (deno jupyter --install)",
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  const stderrTail = new TextDecoder().decode(res.stderr).split("\n")
    .filter((l) =>
      l.trim() && !/unstable and might change|^\[NbConvertApp\] (Converting|Writing)/.test(l)
    )
    .slice(-15).join("\n");
  let check: ExecutedCheck | null = null;
  let executedPath: string | null = null;
  try {
    const nb = parseNotebook(await Deno.readTextFile(outPath), outPath);
    check = checkExecutedNotebook(nb);
    executedPath = outPath;
  } catch {
    // no executed copy: reported through `ok` and stderrTail
  }
  const ok = res.code === 0 && check !== null && check.errors.length === 0 &&
    check.notExecuted === 0;
  return { path: abs, executedPath, seconds, code: res.code, stderrTail, check, ok };
}

/** Rewrite a stored notebook with its outputs cleared (atomic); returns true when it changed. */
export async function clearStoredNotebook(path: string): Promise<boolean> {
  const before = await Deno.readTextFile(path);
  const after = formatNotebook(clearNotebookOutputs(parseNotebook(before, path)));
  if (after === before) return false;
  await writeFileAtomic(path, after);
  return true;
}
