/**
 * Errors about option values. Library functions name the option as their options object does
 * (`maxImages`); a command line maps that name to its flag (`--max-images`) with
 * {@link cliMessage}, so library messages never speak of flags.
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
 * The message of an error for a command line: an {@link OptionError} names the flag (`flags` maps
 * options whose flag is not the kebab-case of their name); other errors keep their message.
 */
export function cliMessage(e: unknown, flags: Record<string, string> = {}): string {
  if (e instanceof OptionError) return `${optionFlag(e.option, flags)} ${e.detail}`;
  return e instanceof Error ? e.message : String(e);
}
