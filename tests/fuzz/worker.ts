// The fuzz loop, in a worker so that the runner (runner.ts) can stop an input that hangs:
// before each check the input is copied into shared memory and the iteration count bumped,
// so a stuck check leaves the culprit where the runner can read it.
import { TARGETS } from "./targets.ts";
import { Rng } from "./mutate.ts";

/** Heap a target may use before it counts as a failure (inputs are at most 16 KiB). */
const HEAP_LIMIT = 512 * 1024 * 1024;

export interface Start {
  target: string;
  seed: number;
  seconds: number;
  /** Int32 [iterations, input length] then the input bytes. */
  shared: SharedArrayBuffer;
}

export interface Done {
  iterations: number;
  failure?: { error: string; input: number[]; iteration: number };
}

// a worker's global scope (this file is type-checked with the window's lib like the rest)
const scope = self as unknown as {
  onmessage: (ev: MessageEvent<Start>) => void;
  postMessage(d: Done): void;
};

scope.onmessage = (ev: MessageEvent<Start>) => {
  const { target: name, seed, seconds, shared } = ev.data;
  const t = TARGETS[name];
  const head = new Int32Array(shared, 0, 2), bytes = new Uint8Array(shared, 8);
  const rng = new Rng(seed);
  const corpus = t.seeds();
  const deadline = performance.now() + seconds * 1000;
  let input = corpus[0], depth = 0, i = 0;
  const report = (d: Done) => scope.postMessage(d);
  for (; performance.now() < deadline; i++) {
    // stack mutations a few deep, then start again from a seed: coverage-agnostic, but deep
    // enough to get past the first check of a structure
    if (depth === 0 || depth > 8 || rng.below(4) === 0) {
      input = corpus[rng.below(corpus.length)];
      depth = 0;
    }
    input = t.mutate(rng, input, corpus[rng.below(corpus.length)]);
    depth++;
    bytes.set(input.subarray(0, bytes.length));
    Atomics.store(head, 1, Math.min(input.length, bytes.length));
    Atomics.store(head, 0, i + 1);
    try {
      t.check(input);
    } catch (e) {
      report({
        iterations: i + 1,
        failure: {
          error: String(e instanceof Error ? e.stack : e),
          input: [...input],
          iteration: i,
        },
      });
      return;
    }
    if ((i & 1023) === 0 && Deno.memoryUsage().heapUsed > HEAP_LIMIT) {
      report({
        iterations: i + 1,
        failure: {
          error: `heap grew to ${Deno.memoryUsage().heapUsed >> 20} MiB (limit ${
            HEAP_LIMIT >> 20
          })`,
          input: [...input],
          iteration: i,
        },
      });
      return;
    }
  }
  report({ iterations: i });
};
