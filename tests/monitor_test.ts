// Monitor ports (/r /t /rt /z): real processes exchange an exact set of
// frames on a switch while monitors of one port run in their own processes.
// The monitored port's counts must be exact and complete, each monitor must
// see exactly the frames of its direction (byte for byte, in order), a monitor
// that never reads must not slow or change the port (its misses counted
// exactly), and a monitor SIGKILLed mid-run must leave the port unaffected.
import assert from "node:assert/strict";
import { openPort } from "../lib/mod.ts";
import { switchInfo } from "../lib/switch/control.ts";
import type { PortInfo } from "../lib/switch/control.ts";
import { vale } from "../ffi/lib.ts";
import { cstr } from "../ffi/lib.ts";
import { tempRunDir } from "./helpers/procs.ts";
import { frameLen } from "./helpers/monitor_peer.ts";
import { runTool } from "./helpers/tools.ts";

/** A port of a `vale-ctl -l --json` listing, wherever the listing nests it. */
// deno-lint-ignore no-explicit-any
function findPort(j: any, name: string): any {
  if (Array.isArray(j)) {
    for (const x of j) {
      const f = findPort(x, name);
      if (f) return f;
    }
  } else if (j && typeof j === "object") {
    if (j.name === name && j.counters) return j;
    for (const v of Object.values(j)) {
      const f = findPort(v, name);
      if (f) return f;
    }
  }
  return undefined;
}

const SCRIPT = new URL("./helpers/monitor_peer.ts", import.meta.url).pathname;

interface Proc {
  pid: number;
  ready: Promise<void>;
  result: Promise<{ sent?: number; frames: number[][]; bad: string[] }>;
  line(): Promise<void>;
  kill(): void;
  status: Promise<Deno.CommandStatus>;
}

function spawn(runDir: string, args: Record<string, unknown>): Proc {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, JSON.stringify(args)],
    env: { VALE_RUN_DIR: runDir },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let readyRes!: () => void;
  const ready = new Promise<void>((r) => (readyRes = r));
  const errP = new Response(proc.stderr).text();
  const result = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (l === "ready") readyRes();
        else if (l.trim()) return JSON.parse(l);
      }
    }
    readyRes();
    throw new Error(`${JSON.stringify(args)}: exited without a result: ${await errP}`);
  })();
  result.catch(() => {});
  return {
    pid: proc.pid,
    ready: Promise.race([ready, result.then(() => {})]),
    result,
    async line() {
      const w = proc.stdin.getWriter();
      await w.write(new TextEncoder().encode("go\n")).catch(() => {});
      w.releaseLock();
    },
    kill() {
      try {
        proc.kill("SIGKILL");
      } catch { /* gone */ }
    },
    status: proc.status,
  };
}

/** What a sender with this id and seed sends: [sender, seq, len] in order. */
function expected(id: number, seed: number, count: number): number[][] {
  return Array.from({ length: count }, (_, s) => [id, s, frameLen(seed, s)]);
}

function port(runDir: string, name: string): PortInfo {
  const p = switchInfo("vale0", { runDir }).ports.find((p) => p.name === name);
  assert.ok(p, `no port ${name}`);
  return p;
}

const noDrops = (p: PortInfo) =>
  // no drop of any reason
  assert.deepEqual(
    Object.entries(p.counters.drops).filter(([, v]) => v !== 0),
    [],
    p.name,
  );

const NA = 1000, NB = 500; // below one ring (1024 slots): nothing may be dropped

Deno.test("monitors /t /r /rt see exactly the monitored port's frames, in order", async () => {
  await using rd = await tempRunDir();
  // the ports exist first: a monitor watches a port that exists
  const A = spawn(rd.dir, {
    mode: "port",
    port: "vale0:a",
    id: 1,
    dst: 2,
    count: NA,
    seed: 11,
    expect: NB,
    hold: true,
  });
  const B = spawn(rd.dir, {
    mode: "port",
    port: "vale0:b",
    id: 2,
    dst: 1,
    count: NB,
    seed: 22,
    expect: NA,
    hold: true,
  });
  await Promise.all([A.ready, B.ready]);
  const mon = (name: string, expect: number) =>
    spawn(rd.dir, {
      mode: "mon",
      port: `vale0:a/${name}@conf:rx-slots=4096`,
      expect,
      idleMs: 3000,
      hold: true,
    });
  const T = mon("t", NA), R = mon("r", NB), RT = mon("rt", NA + NB), Z = mon("z", NA + NB);
  await Promise.all([T.ready, R.ready, RT.ready, Z.ready]);
  await Promise.all([A.line(), B.line()]);
  const [a, b, t, r, rt, z] = await Promise.all([
    A.result,
    B.result,
    T.result,
    R.result,
    RT.result,
    Z.result,
  ]);

  // the exchange itself is exact and complete
  assert.equal(a.sent, NA);
  assert.equal(b.sent, NB);
  assert.deepEqual(a.bad, []);
  assert.deepEqual(b.bad, []);
  assert.deepEqual(b.frames, expected(1, 11, NA));
  assert.deepEqual(a.frames, expected(2, 22, NB));
  const pa = port(rd.dir, "a"), pb = port(rd.dir, "b");
  assert.equal(pa.counters.tx_packets, NA);
  assert.equal(pa.counters.rx_packets, NB);
  assert.equal(pb.counters.tx_packets, NB);
  assert.equal(pb.counters.rx_packets, NA);
  noDrops(pa);
  noDrops(pb);

  // each monitor: exactly its direction's frames, byte for byte, in order
  for (const m of [t, r, rt, z]) assert.deepEqual(m.bad, []);
  assert.deepEqual(t.frames, expected(1, 11, NA));
  assert.deepEqual(r.frames, a.frames);
  for (const both of [rt, z]) {
    assert.equal(both.frames.length, NA + NB);
    assert.deepEqual(both.frames.filter((f) => f[0] === 1), expected(1, 11, NA));
    assert.deepEqual(both.frames.filter((f) => f[0] === 2), a.frames);
  }
  // the monitors' own counters, and how the switch lists them
  const mt = port(rd.dir, "a/t"), mrt = port(rd.dir, "a/rt"), mz = port(rd.dir, "a/z");
  assert.equal(mt.counters.rx_packets, NA);
  assert.equal(mrt.counters.rx_packets, NA + NB);
  noDrops(mt);
  noDrops(mrt);
  assert.deepEqual(mt.monitor, { of: "a", of_index: pa.index, tx: true, rx: false, zcopy: false });
  assert.deepEqual(mz.monitor, { of: "a", of_index: pa.index, tx: true, rx: true, zcopy: true });
  assert.equal(mrt.counters.tx_packets, 0);
  for (const p of [A, B, T, R, RT, Z]) await p.line();
  await Promise.all([A.status, B.status, T.status, R.status, RT.status, Z.status]);
});

Deno.test("a monitor that never reads: the port delivers everything, the monitor's misses are counted exactly", async () => {
  await using rd = await tempRunDir();
  const B = spawn(rd.dir, {
    mode: "port",
    port: "vale0:b",
    id: 2,
    dst: 1,
    count: 0,
    seed: 22,
    expect: NA,
    hold: true,
  });
  await B.ready;
  using a = openPort("vale0:a", { runDir: rd.dir });
  const SLOW = spawn(rd.dir, { mode: "mon", port: "vale0:a/t@conf:rx-slots=64", noRead: true });
  await SLOW.ready;
  await B.line();
  const N = 1000;
  // sent in bursts far below b's ring: b must get all of them
  const { makeFrame, mac } = await import("./helpers/frames.ts");
  for (let s = 0; s < N; s += 50) {
    const batch = [];
    for (let k = s; k < s + 50; k++) batch.push(makeFrame(mac(2), mac(1), k, 1, frameLen(11, k)));
    assert.equal(a.sendBatch(batch), 50);
  }
  const b = await B.result;
  assert.deepEqual(b.frames, expected(1, 11, N));
  const pa = port(rd.dir, "a"), pb = port(rd.dir, "b"), slow = port(rd.dir, "a/t");
  assert.equal(pa.counters.tx_packets, N);
  assert.equal(pb.counters.rx_packets, N);
  noDrops(pa);
  noDrops(pb);
  // its 64-slot ring holds 63 frames; every other frame is a counted miss
  assert.equal(slow.counters.rx_packets, 63);
  assert.equal(slow.counters.drops.ring_full, N - 63);
  // what a user sees: vale-ctl --json (and -v) on the monitor's line
  const ctl = await runTool("vale-ctl", ["-l", "vale0", "--json"], rd.dir);
  assert.equal(ctl.code, 0, ctl.stderr);
  const mon = findPort(JSON.parse(ctl.stdout), "a/t");
  assert.equal(mon?.counters?.drops?.ring_full, N - 63, ctl.stdout);
  assert.equal(mon?.monitor?.of, "a");
  await SLOW.line();
  await SLOW.result;
  await B.line();
  await Promise.all([B.status, SLOW.status]);
});

Deno.test("a monitor SIGKILLed mid-run: the monitored port is unaffected and the monitor goes away", async () => {
  await using rd = await tempRunDir();
  const N = 900;
  const B = spawn(rd.dir, {
    mode: "port",
    port: "vale0:b",
    id: 2,
    dst: 1,
    count: 0,
    seed: 22,
    expect: N,
    hold: true,
  });
  await B.ready;
  using a = openPort("vale0:a", { runDir: rd.dir });
  const M = spawn(rd.dir, { mode: "mon", port: "vale0:a/rt", idleMs: 60000 });
  await M.ready;
  await B.line();
  const { makeFrame, mac } = await import("./helpers/frames.ts");
  const sendRange = (from: number, to: number) => {
    for (let s = from; s < to; s += 30) {
      const batch = [];
      for (let k = s; k < Math.min(to, s + 30); k++) {
        batch.push(makeFrame(mac(2), mac(1), k, 1, frameLen(11, k)));
      }
      assert.equal(a.sendBatch(batch), batch.length);
    }
  };
  sendRange(0, N / 3);
  M.kill();
  await M.status;
  sendRange(N / 3, N); // its entry may still be there, its ring filling: no matter
  const b = await B.result;
  assert.deepEqual(b.frames, expected(1, 11, N));
  const pa = port(rd.dir, "a"), pb = port(rd.dir, "b");
  assert.equal(pa.counters.tx_packets, N);
  assert.equal(pb.counters.rx_packets, N);
  noDrops(pa);
  noDrops(pb);
  // reaped like any port of a dead process; a new monitor works at once
  assert.ok(vale().vale_reap(cstr(rd.dir), cstr("vale0")) >= 0);
  assert.equal(switchInfo("vale0", { runDir: rd.dir }).ports.some((p) => p.monitor), false);
  using m2 = openPort("vale0:a/t", { runDir: rd.dir });
  sendRange(0, 5);
  const got = m2.tryReceive();
  assert.equal(got.length, 5);
  assert.equal(a.txsync(), 0);
  await B.line();
  await B.status;
});

Deno.test("monitors: what is refused, and why", async () => {
  await using rd = await tempRunDir();
  const opts = { runDir: rd.dir };
  using a = openPort("vale0:a", opts);
  using p = openPort("vale0:p{1", opts);
  assert.throws(() => openPort("vale0:nope/r", opts), /no port vale0:nope to monitor/);
  assert.throws(() => openPort("vale0:a/rx", opts), /exclusive/);
  assert.throws(() => openPort("tap:t0/r", opts), /monitors exist on switch ports only/);
  // a monitor has no TX rings to use, and its txsync refuses
  using m = openPort("vale0:a/r", opts);
  assert.equal(m.isMonitor, true);
  assert.equal(m.txRings.length, 0);
  assert.throws(() => m.send(new Uint8Array(60)), /no TX ring/);
  // at most 16 monitors per port
  const more = [];
  try {
    for (let i = 1; i < 16; i++) more.push(openPort("vale0:a/t", opts));
    assert.throws(() => openPort("vale0:a/t", opts), /already has 16 monitors/);
  } finally {
    for (const x of more) x.close();
  }
  assert.ok(a.index >= 0 && p.isPipe);
});

Deno.test("monitors of pipe ends: what each end sends and receives, byte for byte, in order", async () => {
  await using rd = await tempRunDir();
  const opts = { runDir: rd.dir };
  const { makeFrame, mac } = await import("./helpers/frames.ts");
  using m = openPort("vale0:p{1", opts);
  using s = openPort("vale0:p}1", opts);
  using mt = openPort("vale0:p{1/t", opts);
  using sr = openPort("vale0:p}1/r", opts);
  using mrt = openPort("vale0:p{1/rt@conf:rx-slots=4096", opts);
  const got = (p: typeof m, n: number) => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < 1000 && out.length < n; i++) out.push(...p.tryReceive());
    return out;
  };
  const fwd = Array.from(
    { length: 300 },
    (_, k) => makeFrame(mac(2), mac(1), k, 1, frameLen(3, k)),
  );
  const back = Array.from(
    { length: 100 },
    (_, k) => makeFrame(mac(1), mac(2), k, 2, frameLen(4, k)),
  );
  const atS: Uint8Array[] = [], atM: Uint8Array[] = [];
  for (let k = 0; k < fwd.length; k += 50) { // in batches: a pipe pushes back, never drops
    assert.equal(m.sendBatch(fwd.slice(k, k + 50)), 50);
    atS.push(...got(s, 50));
  }
  for (let k = 0; k < back.length; k += 50) {
    assert.equal(s.sendBatch(back.slice(k, k + 50)), 50);
    atM.push(...got(m, 50));
  }
  assert.deepEqual(atS, fwd);
  assert.deepEqual(atM, back);
  assert.deepEqual(got(mt, 300), fwd);
  assert.deepEqual(got(sr, 300), fwd);
  const both = got(mrt, 400);
  assert.deepEqual(both, [...fwd, ...back]); // all of its TX was sent before its RX arrived
  const info = switchInfo("vale0", opts).ports;
  const c = (n: string) => info.find((p) => p.name === n)!.counters;
  assert.equal(c("p{1/t").rx_packets, 300);
  assert.equal(c("p{1/rt").rx_packets, 400);
  assert.equal(c("p{1/t").drops.ring_full + c("p}1/r").drops.ring_full, 0);
});
