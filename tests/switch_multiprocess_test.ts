// The switch between separate processes: learning, flooding, unicast,
// concurrent senders, fragments, overload. Every count is exact:
// what was sent = what arrived + what the switch counted as dropped.
import assert from "node:assert/strict";
import { switchInfo } from "../lib/mod.ts";
import type { PortInfo } from "../lib/switch/control.ts";
import { ScriptPeer, spawnPeer, tempRunDir } from "./helpers/procs.ts";

function port(info: { ports: PortInfo[] }, name: string): PortInfo {
  const p = info.ports.find((x) => x.name === name);
  assert.ok(p, `port ${name} listed`);
  return p;
}

function totalDrops(p: PortInfo): number {
  const d = p.counters.drops;
  return d.ring_full + d.bad_slot + d.no_dest + d.lookup + d.bad_vnet + d.too_big;
}

Deno.test("learning bridge, as netmap's functional test (3 processes)", async () => {
  await using run = await tempRunDir();
  const A = new ScriptPeer(run.dir, "vale0:a", 1);
  const B = new ScriptPeer(run.dir, "vale0:b", 2);
  const C = new ScriptPeer(run.dir, "vale0:c", 3);
  try {
    await Promise.all([A.ready(), B.ready(), C.ready()]);
    // broadcast from C reaches A and B (and not C itself)
    assert.deepEqual(await C.cmd("send bcast 5 60"), { sent: 5 });
    const [ra, rb, rc] = await Promise.all([
      A.cmd("recv 2000"),
      B.cmd("recv 2000"),
      C.cmd("recv 300"),
    ]);
    type R = { frames: { sender: number }[]; bad: number };
    assert.equal((ra as R).frames.length, 5);
    assert.equal((rb as R).frames.length, 5);
    assert.equal((rc as R).frames.length, 0, "never back to the source");
    assert.ok((ra as R).frames.every((f) => f.sender === 3));

    // C's MAC is learned: a unicast to it reaches only C
    const info = switchInfo("vale0", { runDir: run.dir });
    const cIdx = port(info, "c").index;
    assert.ok(info.macs.some((m) => m.mac === "02:00:00:00:00:03" && m.port === cIdx));
    assert.deepEqual(await A.cmd("send 3 7 100"), { sent: 7 });
    const [rb2, rc2] = await Promise.all([B.cmd("recv 300"), C.cmd("recv 2000")]);
    assert.equal((rc2 as R).frames.length, 7);
    assert.ok((rc2 as R).frames.every((f) => f.sender === 1));
    assert.equal((rb2 as R).frames.length, 0, "B sees nothing of a learned unicast");

    // an unknown unicast floods to everyone else
    assert.deepEqual(await A.cmd("send 77 2 60"), { sent: 2 });
    const [rb3, rc3] = await Promise.all([B.cmd("recv 2000"), C.cmd("recv 2000")]);
    assert.equal((rb3 as R).frames.length, 2);
    assert.equal((rc3 as R).frames.length, 2);

    const end = switchInfo("vale0", { runDir: run.dir });
    assert.equal(port(end, "a").counters.tx_packets, 9);
    assert.equal(port(end, "c").counters.tx_packets, 5);
    assert.equal(port(end, "c").counters.rx_packets, 9);
    assert.equal(port(end, "b").counters.rx_packets, 7);
    assert.equal(port(end, "a").counters.rx_packets, 5);
  } finally {
    await Promise.all([A.quit(), B.quit(), C.quit()]);
  }
  // ports vanish with their processes; the switch with its last port
  assert.deepEqual([...Deno.readDirSync(run.dir)].map((e) => e.name), []);
});

Deno.test("flooding 1 -> 3 with random lengths 60..1514, verified byte for byte", async () => {
  await using run = await tempRunDir();
  const N = 3, COUNT = 3000;
  const rx = Array.from(
    { length: N },
    (_, i) => spawnPeer(run.dir, { port: `vale0:r${i}`, mode: "recv", idleMs: 1500 }),
  );
  await Promise.all(rx.map((p) => p.ready));
  const tx = spawnPeer(run.dir, {
    port: "vale0:s",
    mode: "send",
    id: 9,
    dst: "bcast",
    count: COUNT,
    minLen: 60,
    maxLen: 1514,
    seed: 42,
    burst: 32,
  });
  const sent = await tx.result;
  assert.equal(sent.sent, COUNT);
  const got = await Promise.all(rx.map((p) => p.result));
  // the receivers are gone; the counters died with the switch, so check each
  // receiver's own view: exact count unless drops, and then we need the switch.
  for (const g of got) {
    assert.equal(g.bad, 0, JSON.stringify(g.errors));
    assert.equal(g.received, COUNT, `each receiver got every frame: ${JSON.stringify(g)}`);
  }
});

Deno.test("N=3 senders -> 1 learned receiver concurrently, exact accounting", async () => {
  await using run = await tempRunDir();
  const COUNT = 4000;
  // a bystander that must see nothing but the receiver's announcement
  const by = new ScriptPeer(run.dir, "vale0:by", 50);
  await by.ready();
  const rx = spawnPeer(run.dir, {
    port: "vale0:rx",
    mode: "recv",
    announceId: 100,
    idleMs: 2000,
    maxMs: 60000,
    hold: true,
  });
  await rx.ready;
  const senders = [1, 2, 3].map((id) =>
    spawnPeer(run.dir, {
      port: `vale0:s${id}`,
      mode: "send",
      id,
      dst: 100,
      count: COUNT,
      minLen: 60,
      maxLen: 1514,
      seed: id,
      burst: 16,
      waitGo: true,
      hold: true,
    })
  );
  await Promise.all(senders.map((s) => s.ready));
  await Promise.all(senders.map((s) => s.go()));
  try {
    const sres = await Promise.all(senders.map((s) => s.result));
    const r = await rx.result;
    const info = switchInfo("vale0", { runDir: run.dir });
    assert.equal(r.bad, 0, JSON.stringify(r.errors));
    let sent = 0;
    for (const s of sres) sent += s.sent as number;
    assert.equal(sent, 3 * COUNT);
    const txTotal = [1, 2, 3].reduce((a, id) => a + port(info, `s${id}`).counters.tx_packets, 0);
    assert.equal(txTotal, 3 * COUNT, "the switch saw every frame sent");
    const rxp = port(info, "rx");
    // every frame is either delivered or counted as dropped at the receiver
    assert.equal(rxp.counters.rx_packets + totalDrops(rxp), 3 * COUNT);
    assert.equal(r.received, rxp.counters.rx_packets, "receiver got exactly what was delivered");
    assert.equal(Object.keys(r.perSender as object).length, 3);
    assert.equal(port(info, "by").counters.rx_packets, 1, "learned unicast never floods");
    for (const id of [1, 2, 3]) assert.equal(totalDrops(port(info, `s${id}`)), 0);
  } finally {
    for (const p of [...senders, rx]) await p.go().catch(() => {});
    await Promise.all([...senders, rx].map((p) => p.proc.status));
    await by.quit();
  }
});

Deno.test("unicast to a learned port, fragmented frames up to 9000 bytes", async () => {
  await using run = await tempRunDir();
  const R = new ScriptPeer(run.dir, "vale0:r", 200);
  const O = new ScriptPeer(run.dir, "vale0:o", 201);
  await Promise.all([R.ready(), O.ready()]);
  try {
    await R.cmd("send bcast 1 60"); // learn R
    await O.cmd("recv 1000");
    const tx = spawnPeer(run.dir, {
      port: "vale0:t",
      mode: "send",
      id: 5,
      dst: 200,
      count: 300,
      minLen: 1515,
      maxLen: 9000,
      seed: 3,
      burst: 8,
    });
    assert.equal((await tx.result).sent, 300);
    type R = { frames: { sender: number; len: number }[]; bad: number };
    const got = (await R.cmd("recv 5000")) as R;
    const other = (await O.cmd("recv 300")) as R;
    assert.equal(got.bad, 0);
    assert.equal(got.frames.length, 300, "every fragmented frame reassembled");
    assert.ok(got.frames.some((f) => f.len > 8000));
    assert.equal(other.frames.length, 0, "unicast reaches only the learned port");
  } finally {
    await Promise.all([R.quit(), O.quit()]);
  }
});

Deno.test("overload: a receiver that never reads; drops are counted, sender keeps going", async () => {
  await using run = await tempRunDir();
  const keep = new ScriptPeer(run.dir, "vale0:keep", 60);
  await keep.ready();
  const slow = spawnPeer(run.dir, {
    port: "vale0:slow",
    mode: "recv",
    noRead: true,
    idleMs: 60000,
    maxMs: 6000,
  });
  await slow.ready;
  const info0 = switchInfo("vale0", { runDir: run.dir });
  const slots = port(info0, "slow").rx_slots;
  const COUNT = 5000;
  const tx = spawnPeer(run.dir, {
    port: "vale0:tx",
    mode: "send",
    id: 61,
    dst: "bcast",
    count: COUNT,
    burst: 256,
  });
  assert.equal((await tx.result).sent, COUNT, "the sender never blocks on a slow receiver");
  const info = switchInfo("vale0", { runDir: run.dir });
  const s = port(info, "slow");
  assert.equal(s.counters.rx_packets, slots - 1, "the ring filled (one slot stays empty)");
  assert.equal(s.counters.drops.ring_full, COUNT - (slots - 1));
  assert.equal(s.counters.rx_packets + totalDrops(s), COUNT);
  slow.kill("SIGTERM");
  await slow.proc.status;
  await keep.quit();
});
