/**
 * Where switches live: `$VALE_RUN_DIR`, or `/dev/shm/vale`.
 *
 * @module
 */

/** Default run directory when VALE_RUN_DIR is not set. */
export const DEFAULT_RUN_DIR = "/dev/shm/vale";

/** The run directory to use: the explicit one, else VALE_RUN_DIR, else the default. */
export function runDir(explicit?: string): string {
  if (explicit) return explicit;
  let env: string | undefined;
  try {
    env = Deno.env.get("VALE_RUN_DIR");
  } catch { /* no --allow-env: use the default */ }
  return env || DEFAULT_RUN_DIR;
}
