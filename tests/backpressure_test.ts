// Back-pressure (vale_set_backpressure, Port.setBackpressure): a sender that
// finds its destination's RX ring full waits for room instead of dropping at
// once (what the kernel forwarders do, so a 64 KiB TCP super-frame is not
// lost at a busy port); a destination that does not read at all is given up
// on, and every frame that did not fit is still dropped and counted.
// No timing is asserted: only exact counts.
import assert from "node:assert/strict";
import { createPersistentPort, openPort } from "../lib/mod.ts";
import { tempRunDir } from "./helpers/procs.ts";
import { portOf, startTool, summary } from "./helpers/tools.ts";

/** A 60-byte broadcast frame (the switch's only other port gets it). */
function frame(i: number): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, 0x0a], 6);
  f.set([0x88, 0xb5], 12);
  new DataView(f.buffer).setUint32(14, i);
  return f;
}

Deno.test("backpressure: a destination that does not read is given up on; every frame counted", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  const b = openPort("vale0:b@conf:rx-slots=64", o);
  const a = openPort("vale0:a", o);
  try {
    assert.throws(() => a.setBackpressure(-1), RangeError);
    a.setBackpressure(1_000_000); // 1 s at most; a reader that never moves: 50 ms
    const sent = a.sendBatch(Array.from({ length: 200 }, (_, i) => frame(i)));
    assert.equal(sent, 200);
    let c = portOf(run.dir, "vale0", "b")!.counters;
    // 63 slots of room (one always stays empty), the rest dropped and counted
    assert.deepEqual({ rx: c.rx_packets, full: c.drops.ring_full }, { rx: 63, full: 137 });
    // still not reading: given up on for a while, dropped at once and counted
    assert.equal(a.sendBatch(Array.from({ length: 10 }, (_, i) => frame(200 + i))), 10);
    c = portOf(run.dir, "vale0", "b")!.counters;
    assert.deepEqual({ rx: c.rx_packets, full: c.drops.ring_full }, { rx: 63, full: 147 });
    // what arrived is the first 63, in order
    const got = b.tryReceive();
    assert.deepEqual(
      got.map((f) => new DataView(f.buffer, f.byteOffset).getUint32(14)),
      Array.from({ length: 63 }, (_, i) => i),
    );
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("backpressure: an unpaced sender and a reading process: sent = received + counted drops", async () => {
  await using run = await tempRunDir();
  const N = 50_000;
  // persistent, so that its counters outlive pkt-gen (which exits once it has N, or -W)
  createPersistentPort("vale0:rx", { runDir: run.dir });
  const rx = startTool("pkt-gen", ["-i", "vale0:rx", "-f", "rx", "-n", `${N}`, "-W"], run.dir);
  const a = openPort("vale0:tx", { runDir: run.dir });
  try {
    await rx.waitFor(/reading from/);
    a.setBackpressure(100_000);
    let sent = 0;
    const batch = Array.from({ length: 512 }, (_, i) => frame(i));
    while (sent < N) sent += a.sendBatch(batch.slice(0, Math.min(512, N - sent)));
    const r = await rx.within();
    const c = portOf(run.dir, "vale0", "rx")!.counters;
    const received = summary(r.stdout)?.pkts ?? 0;
    console.log(`  ${received} received, ${c.drops.ring_full} dropped (ring full)`);
    assert.equal(c.rx_packets, received, "what the switch delivered, pkt-gen counted");
    assert.equal(received + c.drops.ring_full, N, "nothing lost uncounted");
  } finally {
    a.close();
    rx.signal("SIGINT");
    await rx.done;
  }
});
