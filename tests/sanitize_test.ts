// libvale under AddressSanitizer and UBSan: build/asan/libvale.so
// (scripts/build.ts --sanitize) with C programs compiled with the same
// sanitizers (Deno cannot load an ASan library without preloading the
// runtime, C programs need nothing). Any sanitizer report fails:
//
//   core      tests/hostile/core_check.c: learning bridge, fragments to 9000 B,
//             pipes, persistent port, close/reopen, a SIGKILLed peer
//   hostile   every case of tests/hostile_test.ts, 2 short trials each
//   fuzz      tests/hostile/fuzz_shm.c: mutated ctl/region files opened, listed,
//             forwarded into, reaped (VALE_FUZZ_SECONDS, default 10)
//   vnet      tests/hostile/fuzz_vnet.c: mutated virtio-net headers and GSO
//             super-frames through the offload path (VALE_FUZZ_SECONDS)
//
// Bounded for CI: about a minute on 2 cores.
import assert from "node:assert/strict";
import { buildProg, runProg } from "./helpers/cprog.ts";
import { CASES, row, runTrial, table, type TrialResult } from "./helpers/hostile_trial.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SAN_ENV = {
  ASAN_OPTIONS: "halt_on_error=1:abort_on_error=0:exitcode=99:detect_leaks=1",
  UBSAN_OPTIONS: "halt_on_error=1:print_stacktrace=1:exitcode=99",
};
const SAN_RE = /(ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer)/;
const FUZZ_SECONDS = Number(Deno.env.get("VALE_FUZZ_SECONDS") ?? 10);
const TRIALS = Number(Deno.env.get("VALE_SANITIZE_TRIALS") ?? 2);

async function tempDir(): Promise<{ dir: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "hostile-san-" });
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "ASan/UBSan: core scenarios from C (core_check)",
  ...opts,
  async fn() {
    const bin = await buildProg("core_check", { sanitize: true });
    await using run = await tempDir();
    const r = await runProg(bin, ["vale0"], { VALE_RUN_DIR: run.dir, ...SAN_ENV }, 90000);
    const all = r.stdout + r.stderr;
    assert.ok(!SAN_RE.test(all), `sanitizer report:\n${all}`);
    assert.ok(!r.hung, `core_check hung:\n${all}`);
    assert.equal(r.code, 0, `core_check failed (${r.signal ?? r.code}):\n${all}`);
    for (const s of ["learning", "frags", "pipe", "persistent", "reopen", "sigkill"]) {
      assert.match(r.stdout, new RegExp(`^ok ${s}$`, "m"));
    }
  },
});

Deno.test({
  name: `ASan/UBSan: hostile cases, ${TRIALS} trials each`,
  ...opts,
  async fn() {
    const bins = {
      honest: await buildProg("honest", { sanitize: true }),
      hostile: await buildProg("hostile", { sanitize: true }),
      lib: `${ROOT}build/asan/libvale.so`,
    };
    const rows = [];
    const reports: string[] = [];
    for (const c of CASES) {
      const t0 = performance.now();
      const rs: TrialResult[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const r = await runTrial(c, 5000 + i, bins, { ms: 400, env: SAN_ENV });
        rs.push(r);
        for (const s of r.sanitizer) reports.push(`${c} seed ${r.seed}:\n${s}`);
      }
      rows.push(row(c, rs, (performance.now() - t0) / 1000));
    }
    console.log(`\n${table(rows)}`);
    assert.equal(reports.length, 0, `sanitizer reports:\n${reports.slice(0, 3).join("\n\n")}`);
    for (const r of rows) {
      assert.equal(r.crashed + r.hung + r.dead, 0, `${r.case}: ${JSON.stringify(r)}`);
    }
  },
});

Deno.test({
  name: `ASan/UBSan: fuzzed shared-memory state (fuzz_shm, ${FUZZ_SECONDS} s)`,
  ...opts,
  async fn() {
    const bin = await buildProg("fuzz_shm", { sanitize: true });
    await using run = await tempDir();
    const seed = Number(Deno.env.get("VALE_FUZZ_SEED") ?? Date.now() % 1000000);
    const r = await runProg(
      bin,
      [run.dir, String(seed), String(FUZZ_SECONDS)],
      { VALE_RUN_DIR: run.dir, ...SAN_ENV },
      (FUZZ_SECONDS + 30) * 1000,
    );
    console.log(r.stdout.trim().split("\n").slice(-3).join("\n"));
    const all = r.stdout + r.stderr;
    assert.ok(!r.hung, `fuzz_shm did not finish:\n${all.slice(-3000)}`);
    assert.equal(r.code, 0, `fuzz_shm seed ${seed} failed:\n${all.slice(0, 6000)}`);
  },
});

Deno.test({
  name: `ASan/UBSan: fuzzed virtio-net headers and super-frames (fuzz_vnet, ${FUZZ_SECONDS} s)`,
  ...opts,
  async fn() {
    const bin = await buildProg("fuzz_vnet", { sanitize: true });
    await using run = await tempDir();
    const seed = Number(Deno.env.get("VALE_FUZZ_SEED") ?? Date.now() % 1000000);
    const r = await runProg(
      bin,
      [run.dir, String(seed), String(FUZZ_SECONDS)],
      { VALE_RUN_DIR: run.dir, ...SAN_ENV },
      (FUZZ_SECONDS + 30) * 1000,
    );
    console.log(r.stdout.trim());
    const all = r.stdout + r.stderr;
    assert.ok(!SAN_RE.test(all), `sanitizer report (seed ${seed}):\n${all.slice(0, 6000)}`);
    assert.ok(!r.hung, `fuzz_vnet did not finish:\n${all.slice(-3000)}`);
    assert.equal(r.code, 0, `fuzz_vnet seed ${seed} failed:\n${all.slice(0, 6000)}`);
    assert.match(r.stdout, /fuzz_vnet: [1-9]\d* packets sent, \d+ frames to b \(0 over its MTU\)/);
  },
});
