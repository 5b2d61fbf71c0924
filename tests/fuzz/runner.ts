// Runs one fuzz target in a worker (worker.ts) for a bounded time and watches it: an input
// that runs longer than HANG_MS is a failure too (the worker is terminated). Prints the seed
// and the rate; on failure the seed, the iteration and the input as hex.
import { hex } from "./mutate.ts";
import { TARGETS } from "./targets.ts";
import type { Done, Start } from "./worker.ts";

/** Longest a single input may take (generous: 2 cores shared with other test runs). */
const HANG_MS = 5000;
/** Before its first input the worker loads (and type-checks) its modules: not a hang. */
const START_MS = 60000;

/** Seconds per target: VALE_FUZZ_SECONDS, default 3. */
export function fuzzSeconds(): number {
  const s = Number(Deno.env.get("VALE_FUZZ_SECONDS") ?? "3");
  return Number.isFinite(s) && s > 0 ? s : 3;
}

/** VALE_FUZZ_SEED (decimal or 0x hex) to replay, else a random one. */
export function fuzzSeed(): number {
  const s = Deno.env.get("VALE_FUZZ_SEED");
  if (s !== undefined && s !== "") return Number(s) >>> 0;
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Fuzz `target`; throws with the reproducing input when a property fails or an input hangs. */
export async function fuzz(target: string): Promise<{ iterations: number; seed: number }> {
  const t = TARGETS[target];
  const seed = fuzzSeed(), seconds = fuzzSeconds();
  const shared = new SharedArrayBuffer(8 + t.maxLen);
  const head = new Int32Array(shared, 0, 2);
  const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  const seedText = `0x${seed.toString(16).padStart(8, "0")}`;
  const t0 = performance.now();
  let done: Done;
  try {
    done = await new Promise<Done>((resolve, reject) => {
      let last = -1, since = performance.now();
      const watch = setInterval(() => {
        const it = Atomics.load(head, 0);
        if (it !== last) {
          last = it;
          since = performance.now();
        } else if (performance.now() - since > (it === 0 ? START_MS : HANG_MS)) {
          clearInterval(watch);
          const input = new Uint8Array(shared, 8, Atomics.load(head, 1)).slice();
          reject(
            new Error(
              (it === 0
                ? `fuzz ${t.name}: the worker did not start within ${START_MS} ms `
                : `fuzz ${t.name}: input ${it - 1} still running after ${HANG_MS} ms `) +
                `(seed ${seedText}); input (${input.length} bytes, hex):\n${hex(input)}`,
            ),
          );
        }
      }, 100);
      w.onmessage = (ev: MessageEvent<Done>) => {
        clearInterval(watch);
        resolve(ev.data);
      };
      w.onerror = (ev) => {
        clearInterval(watch);
        ev.preventDefault();
        reject(new Error(`fuzz ${t.name}: worker died (seed ${seedText}): ${ev.message}`));
      };
      w.postMessage({ target, seed, seconds, shared } satisfies Start);
    });
  } finally {
    w.terminate();
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `fuzz ${t.name}: ${done.iterations} inputs in ${secs.toFixed(1)} s ` +
      `(${Math.round(done.iterations / secs)}/s), seed ${seedText}`,
  );
  if (done.failure) {
    const f = done.failure, input = new Uint8Array(f.input);
    throw new Error(
      `fuzz ${t.name}: property failed at input ${f.iteration} (seed ${seedText}; replay with ` +
        `VALE_FUZZ_SEED=${seedText}); input (${input.length} bytes, hex):\n${hex(input)}\n` +
        (target === "names"
          ? `as a string: ${JSON.stringify(new TextDecoder().decode(input))}\n`
          : "") +
        f.error,
    );
  }
  return { iterations: done.iterations, seed };
}
