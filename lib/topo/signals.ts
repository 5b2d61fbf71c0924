/**
 * Ctrl-C for topologies: while a topology owned by this process is up,
 * SIGINT and SIGTERM tear every such topology down, then end the process
 * (status 130 / 143, as a shell reports a signal). One listener pair serves
 * all of them; it is removed when the last one goes down, so a program's
 * own signal handling is untouched otherwise.
 *
 * A program that reaches its end with a topology still up (it forgot
 * `await using` or `down()`) has it torn down too: `beforeunload` fires when
 * the event loop runs dry, and cancelling it keeps the loop going for the
 * teardown. (`Deno.exit()` skips that: the next `up` removes what is left.)
 *
 * @module
 */

/** Something torn down on a signal. */
export interface SignalTeardown {
  /** Tear down (idempotent). */
  down(): Promise<unknown>;
}

const live = new Set<SignalTeardown>();
let stopping = false;
const SIGS = ["SIGINT", "SIGTERM"] as const;
const handlers = new Map<Deno.Signal, () => void>();

function onSignal(sig: "SIGINT" | "SIGTERM"): void {
  if (stopping) return; // a second Ctrl-C while tearing down: keep tearing down
  stopping = true;
  const all = [...live];
  (async () => {
    for (const t of all) {
      try {
        await t.down();
      } catch (e) {
        console.error(`vale topology: teardown after ${sig}: ${(e as Error).message}`);
      }
    }
    Deno.exit(sig === "SIGINT" ? 130 : 143);
  })();
}

function onBeforeUnload(e: Event): void {
  if (!live.size || stopping) return;
  e.preventDefault(); // keep the event loop for the teardown
  for (const t of [...live]) {
    t.down().catch((err) =>
      console.error(`vale topology: teardown at exit: ${(err as Error).message}`)
    );
  }
}

/** Tear `t` down on SIGINT/SIGTERM (and at the end of the program) until {@link release}d. */
export function guard(t: SignalTeardown): void {
  if (!live.size) {
    globalThis.addEventListener("beforeunload", onBeforeUnload);
    for (const s of SIGS) {
      const h = () => onSignal(s);
      handlers.set(s, h);
      Deno.addSignalListener(s, h);
    }
  }
  live.add(t);
}

/** Stop tearing `t` down on signals. */
export function release(t: SignalTeardown): void {
  if (!live.delete(t) || live.size || stopping) return;
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  handlers.clear();
  globalThis.removeEventListener("beforeunload", onBeforeUnload);
}
