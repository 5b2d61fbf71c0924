/**
 * What the forwarder and its supervisor share: the attachment's log file and
 * a sleep that a signal can cut short.
 *
 * @module
 */

/** A logger appending `TIME who[pid] msg` lines to `path` (rotated at 1 MiB). */
export function logger(path: string, who: string): (msg: string) => void {
  try {
    if (Deno.statSync(path).size > 1 << 20) Deno.renameSync(path, `${path}.old`);
  } catch { /* no log yet */ }
  return (msg: string) => {
    try {
      Deno.writeTextFileSync(path, `${new Date().toISOString()} ${who}[${Deno.pid}] ${msg}\n`, {
        append: true,
      });
    } catch { /* the run dir went away */ }
  };
}

/** A wake-up for {@link sleep}: a signal handler calls `fn`. */
export interface Wake {
  /** Ends the current sleep now. */
  fn?: () => void;
}

/** Sleeps `ms`, or until `wake.fn()` is called. */
export function sleep(ms: number, wake?: Wake): Promise<void> {
  return new Promise((r) => {
    const t = setTimeout(r, ms);
    if (wake) {
      wake.fn = () => {
        clearTimeout(t);
        r();
      };
    }
  });
}

/** Calls `onStop` on SIGTERM and SIGINT (detach). */
export function onStopSignal(onStop: () => void): void {
  Deno.addSignalListener("SIGTERM", onStop);
  Deno.addSignalListener("SIGINT", onStop);
}
