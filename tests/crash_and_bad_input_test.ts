// Processes that die at random moments (SIGKILL, inside a lease too), clients
// that write garbage into their own rings, and an idle receiver's CPU use.
import assert from "node:assert/strict";
import { switchInfo } from "../lib/mod.ts";
import { prng } from "./helpers/frames.ts";
import { ScriptPeer, spawnPeer, tempRunDir } from "./helpers/procs.ts";

type Recv = { frames: { sender: number; seq: number; len: number }[]; bad: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("SIGKILL a sender mid-burst, 24 times: nothing wedges, dead ports vanish", async () => {
  await using run = await tempRunDir();
  const X = new ScriptPeer(run.dir, "vale0:x", 1);
  const Y = new ScriptPeer(run.dir, "vale0:y", 2);
  const R = new ScriptPeer(run.dir, "vale0:r", 3);
  await Promise.all([X.ready(), Y.ready(), R.ready()]);
  try {
    // everyone learned
    for (const p of [X, Y, R]) await p.cmd("send bcast 1 60");
    await Promise.all([X.cmd("recv 500"), Y.cmd("recv 500"), R.cmd("recv 500")]);
    const rnd = prng(2024);
    for (let round = 0; round < 24; round++) {
      // half the victims sit inside their lease on R's ring for 300 µs per batch,
      // so the kill often lands between lease and publish
      const env: Record<string, string> = round % 2 ? { VALE_TEST_LEASE_DELAY_US: "300" } : {};
      const victim = spawnPeer(run.dir, {
        port: `vale0:v${round}`,
        mode: "send",
        id: 100 + round,
        dst: round % 3 === 0 ? "bcast" : 3,
        count: 1_000_000,
        minLen: 60,
        maxLen: 3000,
        burst: 64,
      }, env);
      await victim.ready;
      await sleep(Math.floor(rnd() * 120));
      victim.kill("SIGKILL");
      await victim.proc.status;
      // the survivors keep exchanging traffic (first drain the victim's floods)
      await Y.cmd("recv 300");
      assert.deepEqual(await X.cmd("send 2 10 60"), { sent: 10 });
      const got = (await Y.cmd("recv 3000")) as Recv;
      assert.equal(got.frames.filter((f) => f.sender === 1).length, 10, `round ${round}`);
      // R keeps draining what the victims left
      await R.cmd("recv 300");
    }
    // and one kill that surely lands inside a lease: the victim sleeps 300 ms
    // between reserving room in R's ring and publishing it
    const held = spawnPeer(run.dir, {
      port: "vale0:held",
      mode: "send",
      id: 99,
      dst: 3,
      count: 1_000_000,
      burst: 64,
    }, { VALE_TEST_LEASE_DELAY_US: "300000" });
    await held.ready;
    await sleep(150);
    held.kill("SIGKILL");
    await held.proc.status;
    await R.cmd("recv 1500"); // R sleeps, finds the dead lease, reclaims it
    // dead ports are gone (listing reclaims them), their MACs forgotten
    const info = switchInfo("vale0", { runDir: run.dir });
    assert.deepEqual(info.ports.map((p) => p.name).sort(), ["r", "x", "y"]);
    const rp = info.ports.find((p) => p.name === "r")!;
    assert.ok(rp.counters.leases_reclaimed > 0, "some kills landed inside a lease, reclaimed");
    assert.ok(info.macs.every((m) => info.ports.some((p) => p.index === m.port)));
    // R's ring is not wedged by a lease a dead sender held: new traffic arrives
    await R.cmd("recv 500");
    assert.deepEqual(await X.cmd("send 3 50 100"), { sent: 50 });
    const r = (await R.cmd("recv 3000")) as Recv;
    assert.equal(r.frames.filter((f) => f.sender === 1).length, 50);
    assert.equal(r.bad, 0, "half-copied frames are published empty, never as garbage");
  } finally {
    await Promise.all([X.quit(), Y.quit(), R.quit()]);
  }
});

Deno.test("a client writing garbage into its own rings only gets counted errors", async () => {
  await using run = await tempRunDir();
  const X = new ScriptPeer(run.dir, "vale0:x", 1);
  const Y = new ScriptPeer(run.dir, "vale0:y", 2);
  await Promise.all([X.ready(), Y.ready()]);
  try {
    await Y.cmd("send bcast 1 60");
    await X.cmd("recv 500");
    const g = spawnPeer(run.dir, { port: "vale0:g", mode: "garbage", count: 3000, hold: true });
    await g.ready;
    // traffic between the healthy ports while the garbage flows
    let sent = 0;
    for (let i = 0; i < 10; i++) {
      sent += (await X.cmd("send 2 20 200")).sent as number;
    }
    const res = await g.result;
    const info = switchInfo("vale0", { runDir: run.dir });
    const gp = info.ports.find((p) => p.name === "g")!;
    assert.ok((res.errors as number) > 0, "the garbage client was told");
    assert.ok(gp.counters.sync_errors > 0, "bad head/cur counted");
    assert.ok(gp.counters.drops.bad_slot > 0, "bad slots counted");
    await g.go();
    assert.equal((await g.proc.status).code, 0, "the garbage client itself did not crash");
    const got = (await Y.cmd("recv 3000")) as Recv;
    assert.equal(got.frames.filter((f) => f.sender === 1).length, sent);
    // (the garbage client's own frames may be anything: they are its to send)
  } finally {
    await Promise.all([X.quit(), Y.quit()]);
  }
});

function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

Deno.test("an idle receiver sleeps: CPU over 2 s is near zero", async () => {
  await using run = await tempRunDir();
  const p = spawnPeer(run.dir, { port: "vale0:idle", mode: "idle", maxMs: 2500 });
  await p.ready;
  await sleep(200); // past start-up
  const t0 = cpuTicks(p.pid);
  await sleep(2000);
  const t1 = cpuTicks(p.pid);
  const hz = 100;
  const pct = ((t1 - t0) / hz) / 2 * 100;
  assert.ok(pct < 2, `idle receiver used ${pct.toFixed(1)} % CPU`);
  assert.deepEqual(await p.result, { received: 0 });
});
