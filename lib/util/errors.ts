/**
 * Errors about option values. Library functions name the option as their options object does
 * (`maxImages`); a command line maps that name to its flag (`--max-images`) with
 * {@link cliMessage}, so library messages never speak of flags. Other library messages (errors
 * of any class, warnings) name an option in backticks, `` `imageSize` ``; a command line turns the
 * backticked names of its own options into flags ({@link cliMessage}, {@link flagWarnings}).
 *
 * @example
 * ```ts
 * import { cliMessage, OptionError } from "./errors.ts";
 * const e = new OptionError("maxImages", "must be a positive integer, got 0");
 * e.message; // "maxImages must be a positive integer, got 0"
 * cliMessage(e); // "--max-images must be a positive integer, got 0"
 * ```
 * @module
 */

/** An invalid option value; `option` is the option's name in the library's options object. */
export class OptionError extends Error {
  /**
   * @param option the option's name (camelCase, as in the options object).
   * @param detail what was wrong, e.g. "must be a positive integer, got 0".
   */
  constructor(readonly option: string, readonly detail: string) {
    super(`${option} ${detail}`);
    this.name = "OptionError";
  }
}

/** The command-line flag of an option name: `maxImages` → `--max-images`. */
export function optionFlag(option: string, flags: Record<string, string> = {}): string {
  return flags[option] ?? `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * A library message for a command line: each backticked option name (`` `imageSize` ``) that is
 * one of the command's options (a key of `flags`, or the camelCase of one of `options`, the
 * command's kebab-case flag names without dashes) becomes its flag; other text stays.
 *
 * @example
 * ```ts
 * import { withFlags } from "./errors.ts";
 * withFlags("use the same `imageSize`", {}, ["image-size"]); // "use the same --image-size"
 * withFlags("pass the same `loadBankPath`", { loadBankPath: "--load-bank" }); // "… --load-bank"
 * ```
 */
export function withFlags(
  message: string,
  flags: Record<string, string> = {},
  options: Iterable<string> = [],
): string {
  const known = new Set(Object.keys(flags));
  for (const o of options) known.add(o.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()));
  return message.replace(
    /`([a-z][A-Za-z0-9]*)`/g,
    (m, name: string) => known.has(name) ? optionFlag(name, flags) : m,
  );
}

/**
 * The message of an error for a command line: an {@link OptionError} names the flag (`flags` maps
 * options whose flag is not the kebab-case of their name); in any message, the backticked names of
 * the command's options become flags ({@link withFlags}).
 */
export function cliMessage(
  e: unknown,
  flags: Record<string, string> = {},
  options: Iterable<string> = [],
): string {
  let msg = e instanceof OptionError
    ? `${optionFlag(e.option, flags)} ${e.detail}`
    : e instanceof Error
    ? e.message
    : String(e);
  // node:util parseArgs explains some errors over three lines: one line here
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
    msg = msg.replace(/\s*\n\s*/g, " ");
  }
  return withFlags(msg, flags, options);
}

/**
 * Make `console.warn` of this process speak of the command's flags: string arguments pass through
 * {@link withFlags}. For command-line entry points only (it replaces the global `console.warn`).
 */
export function flagWarnings(
  flags: Record<string, string> = {},
  options: Iterable<string> = [],
): void {
  const warn = console.warn.bind(console), opts = [...options];
  console.warn = (...args: unknown[]) =>
    warn(...args.map((a) => typeof a === "string" ? withFlags(a, flags, opts) : a));
}
