// A rate-limited stream far below the switch's capacity arrives complete:
// pkt-gen tx -n N -R rate into pkt-gen rx on the same switch, several runs per
// rate. The receiver must get exactly N and the switch must have counted no
// drop at all.
//
// The receiver's RX ring has 4096 slots, not the default 1024: it sleeps
// between bursts, and on these VMs a futex wake-up now and then takes over a
// millisecond before the receiver runs (seen on an idle machine: once per run,
// 5 bursts = 1275 frames arrived before it read one, 252 over a 1023-slot
// ring). A ring is sized for the reader's latency, as with netmap; 4096 slots
// are 2 ms at 2 Mpps and 8 ms at 0.5 Mpps.
//
// It used to lose whole bursts (6-16 % at 0.5 Mpps): a sender that fell
// behind (page faults at start-up, a CPU taken by another process) sent every
// missed 512-packet burst back to back, and a receiver asleep between bursts
// cannot wake before two of them fill its ring. See pace_wait() and rx_wait()
// in c-src/apps/pktgen.c and the -R comment in cli/pkt-gen.ts.
import assert from "node:assert/strict";
import { createPersistentPort } from "../lib/mod.ts";
import { tempRunDir } from "./helpers/procs.ts";
import { portOf, runTool, startTool, summary } from "./helpers/tools.ts";

const N = 100_000;
const RUNS = 3;

async function oneRun(rate: number, run: number): Promise<void> {
  await using dir = await tempRunDir();
  const what = `-R ${rate}, run ${run}`;
  // persistent (default rings, 1024 slots), so that its counters outlive the
  // receiver, which exits as soon as it has N (-W: or after 1 s without any)
  createPersistentPort("vale0:rx@conf:rx-slots=4096", { runDir: dir.dir });
  const rx = startTool("pkt-gen", ["-i", "vale0:rx", "-f", "rx", "-n", `${N}`, "-W"], dir.dir);
  try {
    await rx.waitFor(/reading from/);
    const tx = await runTool(
      "pkt-gen",
      ["-i", "vale0:tx", "-f", "tx", "-n", `${N}`, "-R", `${rate}`],
      dir.dir,
    );
    assert.equal(tx.code, 0, tx.stderr);
    assert.equal(summary(tx.stdout)?.pkts, N, `${what}: sent`);
    const r = await rx.within();
    assert.equal(r.code, 0, r.stderr);
    // the sender's txsync delivered (or dropped) everything: the counters are final
    const c = portOf(dir.dir, "vale0", "rx")?.counters;
    assert.ok(c, `${what}: the rx port is there`);
    assert.deepEqual(
      { received: summary(r.stdout)?.pkts, delivered: c.rx_packets, drops: c.drops },
      {
        received: N,
        delivered: N,
        drops: {
          ring_full: 0,
          bad_slot: 0,
          no_dest: 0,
          lookup: 0,
          bad_vnet: 0,
          too_big: 0,
        },
      },
      `${what}: all received, none dropped`,
    );
  } finally {
    rx.signal("SIGINT");
    await rx.done;
  }
}

for (const rate of [500_000, 2_000_000]) {
  Deno.test(`pkt-gen -n ${N} -R ${rate} into pkt-gen rx: exactly N, no drop, ${RUNS} runs`, async () => {
    for (let i = 1; i <= RUNS; i++) await oneRun(rate, i);
  });
}
