// Ports in one process: lifecycle, ring configuration, exclusive open,
// pipes, persistent ports, validation of what a client writes, waiting,
// lookup modules and MAC ageing. Real shared memory in a private run dir.
import assert from "node:assert/strict";
import {
  configLookup,
  createPersistentPort,
  openPort,
  PortNameError,
  removePort,
  removeSwitch,
  setLookup,
  SlotFlags,
  switchInfo,
  ValeError,
} from "../lib/mod.ts";
import { BROADCAST, checkFrame, mac, makeFrame } from "./helpers/frames.ts";
import { tempRunDir } from "./helpers/procs.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ValeError) return e.code;
    if (e instanceof PortNameError) return "PortNameError";
    throw e;
  }
  return "ok";
}

Deno.test("ports appear on open and vanish on close, with their switch", async () => {
  await using run = await tempRunDir();
  const opts = { runDir: run.dir };
  const a = openPort("vale0:a", opts);
  assert.ok(Deno.statSync(`${run.dir}/vale0/ctl`).isFile);
  const b = openPort("vale0:b", opts);
  assert.deepEqual(switchInfo("vale0", opts).ports.map((p) => p.name), ["a", "b"]);
  a.close();
  assert.deepEqual(switchInfo("vale0", opts).ports.map((p) => p.name), ["b"]);
  b.close();
  assert.deepEqual([...Deno.readDirSync(run.dir)], []);
  assert.equal(code(() => a.txsync()), "EBADF", "a closed port says so");
});

Deno.test("malformed names are refused before anything is created", async () => {
  await using run = await tempRunDir();
  for (const bad of ["vale0:", "nic0", "vale0:a/q", "vale0:averyveryverylongname"]) {
    assert.equal(code(() => openPort(bad, { runDir: run.dir })), "PortNameError", bad);
  }
  assert.deepEqual([...Deno.readDirSync(run.dir)], []);
});

Deno.test("@conf: rings and slots, -N binds one ring pair", async () => {
  await using run = await tempRunDir();
  using p = openPort("vale0:c@conf:rings=4,tx-slots=256,rx-slots=512", { runDir: run.dir });
  assert.equal(p.txRings.length, 4);
  assert.equal(p.rxRings.length, 4);
  assert.equal(p.txRings[0].numSlots, 256);
  assert.equal(p.rxRings[3].numSlots, 512);
  assert.equal(p.txRings[0].tail, 255, "a new TX ring has tail = n - 1");
  assert.equal(p.rxRings[0].tail, 0, "a new RX ring has tail = 0");
  using q = openPort("vale0:c-2", { runDir: run.dir });
  assert.deepEqual(q.txRings.map((r) => r.index), [2]);
  assert.equal(
    code(() => openPort("vale0:d@conf:slots=5000", { runDir: run.dir })),
    "PortNameError",
  );
});

Deno.test("exclusive open (/x) in both orders", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  const x = openPort("vale0:e/x", o);
  assert.equal(code(() => openPort("vale0:e", o)), "EBUSY");
  x.close();
  const y = openPort("vale0:e", o);
  assert.equal(code(() => openPort("vale0:e/x", o)), "EBUSY");
  const z = openPort("vale0:e", o); // several non-exclusive openers are fine
  y.close();
  z.close();
});

Deno.test("pipes: master and slave exchange by buffer swap, with back-pressure", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  using m = openPort("vale0:p{1", o);
  using s = openPort("vale0:p}1", o);
  const f = makeFrame(BROADCAST, mac(1), 1, 1, 100);
  const before = m.txRings[0].bufIdx(m.txRings[0].head);
  assert.ok(m.send(f));
  m.txsync();
  const got = s.tryReceive();
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], f);
  const rx = s.rxRings[0];
  assert.equal(rx.bufIdx(rx.head === 0 ? rx.numSlots - 1 : rx.head - 1), before, "zero-copy");
  // fill the slave's RX ring: the master's TX ring backs up, nothing is dropped
  s.rxsync(); // give the consumed slot back
  let n = 0;
  while (m.send(f)) n++;
  m.txsync();
  assert.equal(n, 1023 + 1023, "RX ring full (n-1) plus TX ring full (n-1)");
  let total = 0;
  for (let k = 0; k < 4 && total < n; k++) {
    total += s.tryReceive().length;
    m.txsync(); // move what was waiting
  }
  assert.equal(total, n, "every frame arrives, none dropped");
  // pipes carry nothing to the switch's other ports
  using other = openPort("vale0:q", o);
  m.send(f);
  m.txsync();
  assert.equal(other.tryReceive().length, 0);
  const info = switchInfo("vale0", o);
  const mp = info.ports.find((p) => p.name === "p{1")!;
  const sp = info.ports.find((p) => p.name === "p}1")!;
  assert.equal(mp.mem_id, sp.mem_id, "both ends share one memory region");
  assert.equal(mp.counters.tx_packets, sp.counters.rx_packets);
});

Deno.test("persistent ports: create, open, survive close, remove; netmap's errors", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  createPersistentPort("vale0:vi0", o);
  assert.equal(code(() => createPersistentPort("vale0:vi0", o)), "EEXIST");
  const p = openPort("vale0:vi0", o);
  assert.equal(code(() => removePort("vale0:vi0", o)), "EBUSY");
  p.close();
  const info = switchInfo("vale0", o);
  assert.equal(info.ports[0].persistent, true);
  assert.equal(info.ports[0].in_use, false);
  removePort("vale0:vi0", o);
  assert.equal(code(() => removePort("vale0:vi0", o)), "ENOENT");
});

Deno.test("removing a whole switch: refused while in use", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  createPersistentPort("vale1:a", o);
  const b = openPort("vale1:b", o);
  assert.equal(code(() => removeSwitch("vale1", o)), "EBUSY");
  b.close();
  removeSwitch("vale1", o);
  assert.deepEqual([...Deno.readDirSync(run.dir)], []);
});

Deno.test("validation: bad head/cur, buffer index, length, fragment chains", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  using a = openPort("vale0:a", o);
  using b = openPort("vale0:b", o);
  const tx = a.txRings[0];
  // head beyond the ring: refused, ring reset to the switch's view
  tx.head = 5000;
  assert.equal(code(() => a.txsync()), "EINVAL");
  assert.equal(tx.head, 0);
  assert.equal(tx.tail, tx.numSlots - 1);
  // cur behind head
  tx.head = 3;
  tx.cur = 1;
  assert.equal(code(() => a.txsync()), "EINVAL");
  // a slot with a buffer index outside the region, one with a length > buffer
  tx.setBufIdx(0, 999999);
  tx.setLen(0, 60);
  tx.setLen(1, 4000);
  tx.setFlags(1, 0);
  tx.advance(2);
  a.txsync();
  assert.equal(tx.bufIdx(0), 0, "as netmap: a bad index becomes 0");
  // a MOREFRAG chain longer than 64 slots
  for (let i = 0; i < 70; i++) {
    const s = (2 + i) % tx.numSlots;
    tx.setBufIdx(s, 2 + s);
    tx.setLen(s, 100);
    tx.setFlags(s, i < 69 ? SlotFlags.MOREFRAG : 0);
  }
  tx.advance(72);
  a.txsync();
  const c = switchInfo("vale0", o).ports.find((p) => p.name === "a")!.counters;
  assert.equal(c.sync_errors, 2);
  assert.equal(c.drops.bad_slot, 3, "two bad slots, one over-long chain");
  assert.equal(b.tryReceive().length, 1, "the 6 slots after the 64-slot cut form one frame");
  // the RX side: a bad head is refused too
  b.rxRings[0].head = 77777;
  assert.equal(code(() => b.rxsync()), "EINVAL");
});

Deno.test("waiting: receive() sleeps until a frame comes; timeouts; close wakes", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  using a = openPort("vale0:a", o);
  const b = openPort("vale0:b", o);
  const t0 = Date.now();
  assert.equal(await b.wait(150), false);
  assert.ok(Date.now() - t0 >= 140);
  const pending = b.receive(5000);
  setTimeout(() => {
    a.send(makeFrame(BROADCAST, mac(1), 9, 1, 60));
    a.txsync();
  }, 100);
  const got = await pending;
  assert.equal(got.length, 1);
  assert.deepEqual(checkFrame(got[0]), { sender: 1, seq: 9 });
  // closing while a wait is in flight: the wait returns, then the port closes
  const w = b.wait(10000);
  b.close();
  assert.equal(await w, false);
});

Deno.test("waiting: two handles on one port end, one ring each, are woken independently", async () => {
  // Both handles sleep on one wake word of the port end. A wait that returned
  // used to disarm it while the other handle slept: the other then slept
  // through its frame until its 1 s timeout slice (about 0.9 s after the frame).
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  using a0 = openPort("vale0:a-0@conf:rings=2", o);
  using a1 = openPort("vale0:a-1", o);
  using b0 = openPort("vale0:b-0@conf:rings=2", o);
  using b1 = openPort("vale0:b-1", o);
  const frame = makeFrame(BROADCAST, mac(1), 1, 1, 60);
  a0.send(frame); // TX ring 0 -> RX ring 0: b0's, nobody waits yet
  a0.txsync();
  const w1 = b1.wait(5000); // b1 sleeps on RX ring 1
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await b0.wait(1000), true, "b0's frame is there: it returns at once");
  const t0 = Date.now();
  a1.send(frame); // TX ring 1 -> RX ring 1: b1's
  a1.txsync();
  assert.equal(await w1, true);
  const ms = Date.now() - t0;
  assert.ok(ms < 500, `b1 woken by its frame, not by its timeout slice (${ms} ms)`);
  assert.equal(b1.tryReceive().length, 1);
  assert.equal(b0.tryReceive().length, 1);
});

Deno.test("pollable doorbell: poll() on pollFd wakes when a frame arrives", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  using a = openPort("vale0:a", o);
  using b = openPort("vale0:b", o);
  const libc = Deno.dlopen("libc.so.6", {
    poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  });
  try {
    const pfd = new Uint8Array(8);
    const dv = new DataView(pfd.buffer);
    dv.setInt32(0, b.pollFd, true);
    dv.setInt16(4, 1, true); // POLLIN
    assert.equal(b.armPoll(), false, "nothing there yet");
    const polled = libc.symbols.poll(pfd, 1n, 5000);
    setTimeout(() => {
      a.send(makeFrame(BROADCAST, mac(1), 1, 1, 60));
      a.txsync();
    }, 100);
    assert.equal(await polled, 1);
    b.clearPoll();
    assert.equal(b.tryReceive().length, 1);
  } finally {
    libc.close();
  }
});

Deno.test("MAC table: ages out, forgets a port that leaves", async () => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  Deno.env.set("VALE_MAC_AGE", "1");
  try {
    using a = openPort("vale0:a", o);
    const b = openPort("vale0:b", o);
    using c = openPort("vale0:c", o);
    b.send(makeFrame(BROADCAST, mac(2), 0, 2, 60));
    b.txsync();
    a.tryReceive();
    c.tryReceive();
    // learned: unicast to b reaches only b
    a.send(makeFrame(mac(2), mac(1), 1, 1, 60));
    a.txsync();
    assert.equal(b.tryReceive().length, 1);
    assert.equal(c.tryReceive().length, 0);
    // after the ageing time, the entry is ignored: unicast floods again
    await new Promise((r) => setTimeout(r, 2300));
    assert.ok(switchInfo("vale0", o).macs.some((m) => m.mac === "02:00:00:00:00:02" && m.expired));
    a.send(makeFrame(mac(2), mac(1), 2, 1, 60));
    a.txsync();
    assert.equal(c.tryReceive().length, 1, "aged out: flooded");
    assert.equal(b.tryReceive().length, 1);
    // b leaves: its entry is forgotten
    b.send(makeFrame(BROADCAST, mac(2), 3, 2, 60));
    b.txsync();
    b.close();
    assert.ok(!switchInfo("vale0", o).macs.some((m) => m.mac === "02:00:00:00:00:02"));
  } finally {
    Deno.env.delete("VALE_MAC_AGE");
  }
});

Deno.test("lookup modules: portmap, ethertype, and a user module (.so)", async (t) => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  using a = openPort("vale0:a", o);
  using b = openPort("vale0:b", o);
  using c = openPort("vale0:c", o);
  const f = makeFrame(BROADCAST, mac(1), 1, 1, 60);
  const counts = () => [a, b, c].map((p) => p.tryReceive().length);

  await t.step("portmap: a -> c only, unmapped sources drop (counted)", () => {
    setLookup("vale0", "portmap", o);
    assert.match(configLookup("vale0", `map ${a.index} ${c.index}`, o), /map/);
    a.send(f);
    a.txsync();
    b.send(f);
    b.txsync();
    assert.deepEqual(counts(), [0, 0, 1]);
    const info = switchInfo("vale0", o);
    assert.equal(info.lookup, "portmap");
    assert.equal(info.ports.find((p) => p.name === "b")!.counters.drops.lookup, 1);
  });

  await t.step("ethertype: 0x88b5 -> b, default flood", () => {
    setLookup("vale0", "ethertype", o);
    configLookup("vale0", `ethertype 0x88b5 ${b.index}`, o);
    configLookup("vale0", "default flood", o);
    a.send(f);
    a.txsync();
    const ip = new Uint8Array(f);
    ip[12] = 0x08;
    ip[13] = 0x00;
    a.send(ip);
    a.txsync();
    assert.deepEqual(counts(), [0, 2, 1]);
  });

  await t.step("user module: the mSwitch tutorial (IPv4 -> src + 1, else broadcast)", async () => {
    const so = `${run.dir}/lookup_ipv4.so`;
    const src = new URL("./data/lookup_ipv4.c", import.meta.url).pathname;
    const inc = new URL("../c-src/include", import.meta.url).pathname;
    const cc = await new Deno.Command("cc", {
      args: ["-shared", "-fPIC", "-O2", `-I${inc}`, "-o", so, src],
    }).output();
    assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    setLookup("vale0", so, o);
    const ip = new Uint8Array(f);
    ip[12] = 0x08;
    ip[13] = 0x00;
    a.send(ip); // a (index 0) -> index 1 = b
    a.txsync();
    a.send(f); // not IPv4 -> broadcast
    a.txsync();
    assert.deepEqual(counts(), [0, 2, 1]);
    assert.match(configLookup("vale0", `route ${a.index} ${c.index}`, o), /route/);
    a.send(ip);
    a.txsync();
    assert.deepEqual(counts(), [0, 0, 1]);
    assert.equal(code(() => setLookup("vale0", "/nonexistent.so", o)), "ENOENT");
    setLookup("vale0", "learning", o);
  });
});
