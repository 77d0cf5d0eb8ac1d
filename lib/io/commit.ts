/**
 * Crash-safe outputs: a lock per output, an all-or-nothing commit of an output folder, and the
 * recovery of whatever a killed run left behind.
 *
 * Invariants (what a reader of `out` can rely on, even after `kill -9` at any instant):
 * - `out` holds either the complete old outputs or the complete new ones. The one window where
 *   `out` is briefly absent (between renaming the old folder aside and the new one in; POSIX has
 *   no portable atomic exchange of two folders) is closed by {@link recoverOutput}, which every
 *   run calls under the lock before it starts: the complete new folder is moved in (roll forward),
 *   or the old one back (roll back), and the leftovers are removed, each said on stderr.
 * - At most one snarm process writes `out` at a time ({@link acquireLock}); a lock whose holder is
 *   dead is taken over with a note.
 *
 * Names beside `out` (same parent folder, so renames are atomic):
 * - `<out>.lock` — the lock: JSON `{pid, host, started}`, created atomically (link of a complete
 *   temp file).
 * - `<out>.stage-<pid>/` — the new outputs being built; complete once it holds
 *   {@link COMMIT_MARKER}.
 * - `<out>.old-<pid>/` — the previous outputs during the swap.
 * - `<out>.partial-<pid>/`, `<file>.tmp-<pid>-<rand>` — staging of older versions and of atomic
 *   single-file writes ({@link writeFileAtomic}); removed when their process is dead.
 *
 * @example
 * ```ts
 * import { acquireLock, commitFolder, recoverOutput, stageFolder } from "./commit.ts";
 * const out = await Deno.makeTempDir() + "/results";
 * const lock = await acquireLock(out);
 * try {
 *   await recoverOutput(out);
 *   const stage = await stageFolder(out);
 *   await Deno.writeTextFile(`${stage}/results.json`, "{}\n");
 *   await commitFolder(stage, out, { replace: ["results.json"] });
 * } finally {
 *   lock.release();
 * }
 * ```
 * @module
 */
// Posix path helpers (no `node:` import: safetensors.ts, which the browser page uses, imports
// this module).
const join = (...parts: string[]) => parts.join("/").replace(/\/+/g, "/");
const dirname = (p: string) => {
  const i = p.replace(/\/+$/, "").lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
};
const basename = (p: string) => p.replace(/\/+$/, "").split("/").pop()!;
import { hitFault } from "../util/fault.ts";

/** Raised when another live process holds the lock on an output. */
export class OutputLockedError extends Error {
  override name = "OutputLockedError";
}

/** File inside a stage folder that marks it complete (removed from `out` after the swap). */
export const COMMIT_MARKER = ".snarm-commit.json";

/** Where notes (stale locks taken over, debris removed, commits finished) go; stderr by default. */
export type Note = (line: string) => void;
const stderrNote: Note = (line) => console.error(`snarm: ${line}`);

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/** Paths (stages, old folders, locks, temp files) this process created: never "stale". */
const mine = new Set<string>();

/**
 * Start time of process `pid` (clock ticks since boot, /proc/<pid>/stat field 22), or null where
 * unknown. With the PID it identifies a process across PID reuse (containers, PID namespaces).
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether process `pid` on this machine is alive. Linux: `/proc/<pid>` (a zombie counts as
 * dead). Elsewhere a process is assumed alive (locks are then never taken over automatically).
 */
export function processAlive(pid: number, startTime?: string | null): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return startTime == null || startTime === processStartTime(pid);
  if (startTime != null) {
    const now = processStartTime(pid);
    if (now !== null && now !== startTime) return false; // the PID now names another process
  }
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    try {
      Deno.statSync("/proc/self");
    } catch {
      return true; // no procfs: cannot tell, assume alive
    }
    return false;
  }
}

/** A held lock; `release()` removes it (idempotent) if it is still ours. */
export interface OutputLock {
  path: string;
  release(): void;
}

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  /** The holder's /proc start time (see {@link processStartTime}). */
  procStart?: string | null;
  /** Random token: tells this process's lock from another with the same PID. */
  token?: string;
}

function readLock(path: string): LockInfo | null {
  try {
    const v = JSON.parse(Deno.readTextFileSync(path));
    if (
      Number.isSafeInteger(v?.pid) && v.pid > 0 && typeof v.host === "string" &&
      typeof v.started === "string"
    ) return v as LockInfo;
  } catch { /* unreadable or half-written: treated as no holder */ }
  return null;
}

const TOKEN = crypto.randomUUID();

/**
 * Take the lock on output `out` (`<out>.lock` beside it; the parent folder is created).
 * A lock held by a live process is refused at once; one held by a dead process (same host) is
 * taken over with a note.
 * With `wait`, a live holder is waited for instead (polled every 0.5 s, said once) — for caches
 * that two runs may fill at once.
 * @param what how the output is named in messages (e.g. `--out results`).
 * @throws {OutputLockedError} naming the holder's PID and start time.
 */
export async function acquireLock(
  out: string,
  opts: { what?: string; note?: Note; wait?: boolean } = {},
): Promise<OutputLock> {
  const note = opts.note ?? stderrNote;
  const what = opts.what ?? out;
  await Deno.mkdir(dirname(out), { recursive: true });
  const path = `${out}.lock`;
  const me: LockInfo = {
    pid: Deno.pid,
    host: hostname(),
    started: new Date().toISOString(),
    procStart: processStartTime(Deno.pid),
    token: TOKEN,
  };
  const tmp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await Deno.writeTextFile(tmp, JSON.stringify(me) + "\n");
  try {
    let waiting = false;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        // link(2) fails if `path` exists: the lock appears complete or not at all.
        await Deno.link(tmp, path);
        mine.add(path);
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          if (readLock(path)?.token === TOKEN) {
            try {
              Deno.removeSync(path);
            } catch { /* gone */ }
          }
        };
        globalThis.addEventListener("unload", release);
        return { path, release };
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      const holder = readLock(path);
      const ours = holder?.token === TOKEN; // this process already holds it
      if (
        holder && holder.host === me.host && !ours &&
        processAlive(holder.pid, holder.procStart) && !(holder.pid === Deno.pid)
      ) {
        if (opts.wait) {
          if (!waiting) note(`waiting for process ${holder.pid}, which is writing ${what}`);
          waiting = true;
          attempt--;
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        throw new OutputLockedError(
          `${what} is in use by snarm process ${holder.pid} (started ${holder.started}); ` +
            `wait for it to finish or choose another output (lock file ${path})`,
        );
      }
      if (holder && holder.host !== me.host) {
        throw new OutputLockedError(
          `${what} is locked by process ${holder.pid} on host ${holder.host} (started ` +
            `${holder.started}); if that run is gone, remove ${path}`,
        );
      }
      if (ours) {
        throw new OutputLockedError(`${what}: this process already holds the lock ${path}`);
      }
      // Dead holder (or a lock file without content): take it over. Renaming it aside first
      // means two runs taking over at once cannot both succeed (only one rename finds it); if
      // what we renamed aside is not the dead lock we read (another run's fresh lock), put it
      // back and look again.
      const aside = `${path}.stale-${Deno.pid}`;
      try {
        await Deno.rename(path, aside);
        const moved = readLock(aside);
        if (JSON.stringify(moved) !== JSON.stringify(holder)) {
          await Deno.link(aside, path).catch(() => {});
          await Deno.remove(aside).catch(() => {});
          continue;
        }
        await Deno.remove(aside).catch(() => {});
        note(
          holder
            ? `took over the lock on ${what} from process ${holder.pid} (started ${holder.started}), which is no longer running`
            : `removed an unreadable lock file ${path}`,
        );
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    throw new OutputLockedError(`${what}: could not take the lock ${path} (contended)`);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/** Parse `<base><sep><pid>[-rand]` sibling names; the pid or null. */
function pidOf(name: string, prefix: string): number | null {
  if (!name.startsWith(prefix)) return null;
  const m = /^(\d+)(?:-[a-z0-9]+)?$/.exec(name.slice(prefix.length));
  return m ? Number(m[1]) : null;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Remove temp files `<path>.tmp-<pid>-*` left beside `path` by dead processes (an atomic write
 * killed before its rename), saying so. Returns the removed paths.
 */
export async function removeStaleTemps(path: string, note: Note = stderrNote): Promise<string[]> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return removed;
  }
  for (const e of entries) {
    const pid = pidOf(e.name, prefix);
    const p0 = join(dir, e.name);
    if (pid === null || mine.has(p0) || (pid !== Deno.pid && processAlive(pid))) continue;
    const p = join(dir, e.name);
    await Deno.remove(p, { recursive: true }).catch(() => {});
    removed.push(p);
    note(`removed ${p}, left by process ${pid}, which is no longer running`);
  }
  return removed;
}

/**
 * Write `bytes` to `path` atomically: a temp file beside it (`<path>.tmp-<pid>-<rand>`), flushed
 * to disk, then renamed over `path`. An existing `path` is replaced only by a complete file; the
 * temp file is removed on failure, and stale ones of dead processes are removed first.
 * `fault` names a test fault point hit between the write and the rename (see `util/fault.ts`).
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string,
  opts: { fault?: string; note?: Note } = {},
): Promise<void> {
  await removeStaleTemps(path, opts.note);
  const tmp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  mine.add(tmp);
  try {
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    const f = await Deno.open(tmp, { write: true, createNew: true });
    try {
      let off = 0;
      while (off < data.length) off += await f.write(data.subarray(off));
      await f.syncData();
    } finally {
      f.close();
    }
    if (opts.fault) await hitFault(opts.fault);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Where outputs for `out` are committed: a symlinked `out` at its target (the link itself stays;
 * the swap renames folders, which would replace the link), else `out` itself.
 */
export function commitTarget(out: string): string {
  try {
    if (Deno.lstatSync(out).isSymlink) return Deno.realPathSync(out);
  } catch { /* does not exist yet */ }
  return out;
}

/**
 * Create an empty stage folder for a new version of `out` (`<out>.stage-<pid>`, beside it).
 * Call {@link commitFolder} to move it in; remove it on failure.
 */
export async function stageFolder(out: string): Promise<string> {
  await Deno.mkdir(dirname(out), { recursive: true });
  const stage = `${out}.stage-${Deno.pid}`;
  if (!mine.has(stage)) await recoverOutput(out); // a dead run with our PID (PID namespaces)
  await Deno.remove(stage, { recursive: true }).catch(() => {});
  await Deno.mkdir(stage);
  mine.add(stage);
  return stage;
}

/** How a stage replaces `out`. */
export interface CommitOptions {
  /**
   * The entries of `out` this tool owns: they are replaced by the stage's (or dropped when the
   * stage lacks them). Every other entry of `out` (a user's file, a bank saved into it) is kept.
   * `"all"`: the stage replaces `out` whole (caches).
   */
  replace: readonly string[] | "all";
  note?: Note;
}

/**
 * Replace `out` by the complete `stage` so that `out` holds the complete old outputs or the
 * complete new ones (see the module invariants). Steps: mark the stage complete; move the
 * entries of `out` that are not in `replace` into the stage; rename `out` to `<out>.old-<pid>`;
 * rename the stage to `out`; remove the old folder and the marker. Each step is a rename in one
 * folder; a kill at any point is finished by {@link recoverOutput}. The new `out` gets the old
 * folder's permission bits (and owner and group where the process may set them; ACLs are not
 * copied).
 * @throws when a rename fails (e.g. `out` is not a folder); `out` is then unchanged or
 * recoverable.
 */
export async function commitFolder(
  stage: string,
  out: string,
  opts: CommitOptions,
): Promise<void> {
  const marker = { pid: Deno.pid, replace: opts.replace === "all" ? "all" : [...opts.replace] };
  await writeFileAtomic(join(stage, COMMIT_MARKER), JSON.stringify(marker) + "\n");
  await hitFault("commit-marked");
  const old = `${out}.old-${Deno.pid}`;
  mine.add(old);
  const carried: string[] = [];
  // the folder's permission bits (and owner/group where allowed) carry over to the new version
  const before = await Deno.stat(out).catch(() => null);
  try {
    await finishCommit(stage, out, opts.replace, old, carried);
  } catch (e) {
    // A rename failed (permissions, another filesystem, …): put everything back as it was, so
    // the caller may discard the stage; if that fails too, the marked stage stays for recovery.
    try {
      if (!(await exists(out)) && (await exists(old))) await Deno.rename(old, out);
      for (const name of carried) {
        if (!(await exists(join(out, name)))) await Deno.rename(join(stage, name), join(out, name));
      }
      await Deno.remove(join(stage, COMMIT_MARKER));
    } catch { /* left for recoverOutput: the stage keeps its marker */ }
    throw e;
  }
  if (before?.isDirectory && before.mode !== null) {
    try {
      await Deno.chmod(out, before.mode & 0o7777);
      if (before.uid !== null && before.gid !== null) {
        // owner and group (root may set both); else the group alone, where the process is in it
        await Deno.chown(out, before.uid, before.gid)
          .catch(() => Deno.chown(out, null, before.gid))
          .catch(() => {});
      }
    } catch (e) {
      console.warn(`snarm: ${out}: could not restore its permissions (${(e as Error).message})`);
    }
  }
}

/**
 * Remove a stage folder that was not (or no longer) being committed. A stage whose commit
 * started (it holds {@link COMMIT_MARKER}: it may hold the user's carried files) is left for
 * {@link recoverOutput} — use this in `finally` blocks and signal handlers instead of removing
 * the stage directly.
 */
export function discardStage(stage: string): void {
  try {
    Deno.statSync(join(stage, COMMIT_MARKER));
    return; // a commit is under way or was interrupted: recovery finishes it
  } catch { /* no marker: safe to remove */ }
  try {
    Deno.removeSync(stage, { recursive: true });
  } catch { /* already gone */ }
}

async function finishCommit(
  stage: string,
  out: string,
  replace: readonly string[] | "all",
  old: string,
  carried: string[] = [],
): Promise<void> {
  if (await exists(out)) {
    if (!(await Deno.stat(out)).isDirectory) {
      throw new Error(`output ${out} exists and is not a folder`);
    }
    // Carry the entries this tool does not own into the new version.
    for (const e of Deno.readDirSync(out)) {
      if (replace === "all" || replace.includes(e.name) || e.name === COMMIT_MARKER) continue;
      const dst = join(stage, e.name);
      if (await exists(dst)) continue;
      await Deno.rename(join(out, e.name), dst);
      carried.push(e.name);
      await hitFault("commit-carry");
    }
    await Deno.rename(out, old);
  }
  await hitFault("commit-aside");
  await Deno.rename(stage, out);
  await hitFault("commit-swapped");
  const left = await removeTree(old);
  if (left) console.warn(`snarm: could not remove the previous outputs ${old} (${left})`);
  await Deno.remove(join(out, COMMIT_MARKER)).catch(() => {});
}

/**
 * Remove a folder tree of this tool's outputs; a folder without write permission (e.g. an `--out`
 * made read-only, whose mode the commit carried over) is made writable first.
 * @returns null when removed (or absent), else why not.
 */
async function removeTree(path: string): Promise<string | null> {
  try {
    await Deno.remove(path, { recursive: true });
    return null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    try {
      await Deno.chmod(path, 0o700);
      await Deno.remove(path, { recursive: true });
      return null;
    } catch (e2) {
      return (e2 as Error).message;
    }
  }
}

/**
 * Finish or roll back a commit of `out` that a killed process left half done, and remove the
 * staging debris of dead processes beside `out` — each action said with `note`. Call it while
 * holding the lock on `out`, before writing anything. Returns the notes.
 *
 * - a complete stage (`<out>.stage-<pid>` with its marker): the commit is finished (roll
 *   forward);
 * - an incomplete stage or a `<out>.partial-<pid>`: removed;
 * - `<out>.old-<pid>`: restored as `out` when `out` is missing and no complete stage exists
 *   (roll back), else removed;
 * - a commit marker left in `out`: removed.
 */
export async function recoverOutput(out: string, note: Note = stderrNote): Promise<string[]> {
  const said: string[] = [];
  const say = (s: string) => {
    said.push(s);
    note(s);
  };
  const dir = dirname(out);
  const base = basename(out);
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return said;
  }
  const dead = (prefix: string) =>
    names.map((n) => ({ n, pid: pidOf(n, prefix) }))
      .filter((x): x is { n: string; pid: number } =>
        x.pid !== null && !mine.has(join(dir, x.n)) &&
        (x.pid === Deno.pid || !processAlive(x.pid))
      );
  for (const { n, pid } of dead(`${base}.stage-`)) {
    const stage = join(dir, n);
    let marker: { replace?: string[] | "all" } | null = null;
    try {
      marker = JSON.parse(await Deno.readTextFile(join(stage, COMMIT_MARKER)));
    } catch { /* incomplete */ }
    if (marker && (Array.isArray(marker.replace) || marker.replace === "all")) {
      const old = join(dir, `${base}.old-${pid}`);
      if ((await exists(out)) && (await exists(old))) await Deno.remove(old, { recursive: true });
      await finishCommit(stage, out, marker.replace!, join(dir, `${base}.old-${pid}`));
      say(
        `finished the commit of ${out} that process ${pid} began before it died (new outputs in place)`,
      );
    } else {
      await Deno.remove(stage, { recursive: true }).catch(() => {});
      say(`removed ${stage}, the incomplete outputs of process ${pid}, which is no longer running`);
    }
  }
  for (const { n, pid } of dead(`${base}.old-`)) {
    const old = join(dir, n);
    if (!(await exists(old))) continue;
    if (!(await exists(out))) {
      await Deno.rename(old, out);
      say(`restored ${out} from ${old} (process ${pid} died while replacing it)`);
    } else {
      const left = await removeTree(old);
      say(
        left
          ? `could not remove ${old}, the previous outputs replaced by process ${pid} (${left})`
          : `removed ${old}, the previous outputs replaced by process ${pid}`,
      );
    }
  }
  for (const { n, pid } of dead(`${base}.partial-`)) {
    await Deno.remove(join(dir, n), { recursive: true }).catch(() => {});
    say(`removed ${join(dir, n)}, left by process ${pid}, which is no longer running`);
  }
  if (await exists(join(out, COMMIT_MARKER))) {
    await Deno.remove(join(out, COMMIT_MARKER)).catch(() => {});
    say(`removed the commit marker left in ${out}`);
  }
  return said;
}
