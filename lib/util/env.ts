/**
 * Environment overrides of an implementation choice (`SNARM_SEARCH`, `SNARM_CORESET`,
 * `SNARM_HEAD`), read the same way everywhere.
 * @module
 */

/**
 * The value of the environment variable `name` when it is one of `allowed`; undefined when it is
 * unset, empty or unreadable (no `--allow-env`, a browser).
 * @throws {Error} `NAME='value': use one of …` for any other value.
 */
export function envChoice<T extends string>(name: string, allowed: readonly T[]): T | undefined {
  let v: string | undefined;
  try {
    v = Deno.env.get(name);
  } catch {
    return undefined;
  }
  if (!v) return undefined;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new Error(`${name}='${v}': use one of ${allowed.join(", ")}`);
  }
  return v as T;
}
