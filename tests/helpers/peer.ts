// A test process on a switch port, driven by the multi-process tests.
//
//   deno run -A tests/helpers/peer.ts '<json>'
//
// json: { port, mode: "recv"|"send"|"sendrecv"|"garbage"|"idle", ... }
// Prints "ready" once the port is open, then one JSON result line at the end.
// Every loop is bounded by count and time.
import { openPort } from "../../lib/mod.ts";
import { BROADCAST, checkFrame, mac, makeFrame, prng } from "./frames.ts";

interface Args {
  port: string;
  mode: "recv" | "send" | "garbage" | "idle" | "script";
  id?: number; // sender id, also its MAC
  dst?: number | "bcast";
  count?: number;
  minLen?: number;
  maxLen?: number;
  seed?: number;
  /** recv: stop after this many frames, or idleMs without traffic, or maxMs */
  expect?: number;
  idleMs?: number;
  maxMs?: number;
  /** send: announce our MAC first with one broadcast (learning) */
  announce?: boolean;
  /** send: frames per txsync */
  burst?: number;
  /** send: wait for a line on stdin before sending */
  waitGo?: boolean;
  /** recv: do not read at all (overload) */
  noRead?: boolean;
  /** recv: broadcast one frame from this test MAC first, so the switch learns us */
  announceId?: number;
  /** print the result, then keep the port open until a line arrives on stdin */
  hold?: boolean;
}

const args: Args = JSON.parse(Deno.args[0]);
const port = openPort(args.port);
const out = (o: unknown) => console.log(JSON.stringify(o));

async function waitLine() {
  const buf = new Uint8Array(64);
  await Deno.stdin.read(buf);
}

if (args.mode === "recv") {
  if (args.announceId !== undefined) {
    port.send(makeFrame(BROADCAST, mac(args.announceId), 0xffffffff, args.announceId, 60));
    port.txsync();
  }
  console.log("ready");
  const perSender: Record<number, number> = {};
  let received = 0, bad = 0, zeroLen = 0;
  const errors: string[] = [];
  const t0 = Date.now();
  const maxMs = args.maxMs ?? 20000, idleMs = args.idleMs ?? 1500;
  let last = Date.now();
  while (Date.now() - t0 < maxMs && Date.now() - last < idleMs) {
    if (args.expect !== undefined && received >= args.expect) break;
    if (args.noRead) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const batch = await port.receive(Math.min(200, idleMs));
    if (batch.length) last = Date.now();
    for (const f of batch) {
      if (f.length === 0) {
        zeroLen++;
        continue;
      }
      const r = checkFrame(f);
      if (typeof r === "string") {
        bad++;
        if (errors.length < 5) errors.push(r);
      } else {
        received++;
        perSender[r.sender] = (perSender[r.sender] ?? 0) + 1;
      }
    }
  }
  out({ received, bad, zeroLen, perSender, errors });
} else if (args.mode === "send") {
  const id = args.id ?? 1;
  const src = mac(id);
  const dst = args.dst === undefined || args.dst === "bcast" ? BROADCAST : mac(args.dst);
  const rnd = prng(args.seed ?? id);
  const minLen = args.minLen ?? 60, maxLen = args.maxLen ?? minLen;
  const count = args.count ?? 1000, burst = args.burst ?? 64;
  if (args.announce) {
    port.send(makeFrame(BROADCAST, src, 0xffffffff, id, 60));
    port.txsync();
  }
  console.log("ready");
  if (args.waitGo) await waitLine();
  let sent = 0, refused = 0;
  const t0 = Date.now();
  while (sent < count && Date.now() - t0 < 30000) {
    const n = Math.min(burst, count - sent);
    for (let i = 0; i < n; i++) {
      const len = minLen + Math.floor(rnd() * (maxLen - minLen + 1));
      if (port.send(makeFrame(dst, src, sent, id, len))) sent++;
      else refused++;
    }
    port.txsync();
    // let receivers keep up: the tests count drops, they don't provoke them
    await new Promise((r) => setTimeout(r, 0));
  }
  out({ sent, refused });
} else if (args.mode === "garbage") {
  // A buggy client: random head/cur, buffer indices and lengths in its own rings.
  console.log("ready");
  const rnd = prng(args.seed ?? 7);
  let errors = 0, syncs = 0;
  const tx = port.txRings[0], rx = port.rxRings[0];
  const n = tx.numSlots;
  for (let it = 0; it < (args.count ?? 2000); it++) {
    const what = Math.floor(rnd() * 6);
    const r32 = () => Math.floor(rnd() * 0x100000000);
    const slot = Math.floor(rnd() * n);
    switch (what) {
      case 0:
        tx.head = r32() % (n * 4);
        tx.cur = r32() % (n * 4);
        break;
      case 1:
        tx.setBufIdx(slot, r32());
        tx.setLen(slot, r32() & 0xffff);
        tx.advance(tx.next(tx.head));
        break;
      case 2:
        tx.setLen(tx.head, r32() & 0xffff);
        tx.setFlags(tx.head, 0x20); // MOREFRAG chains that never end
        tx.advance(tx.next(tx.head));
        break;
      case 3:
        rx.head = r32() % (n * 4);
        rx.cur = r32();
        break;
      case 4:
        rx.setBufIdx(slot, r32());
        break;
      default: {
        // a valid frame, so we also exercise the switch with good traffic
        tx.advance(tx.head); // no-op
        try {
          port.send(makeFrame(BROADCAST, mac(args.id ?? 99), it, args.id ?? 99, 60));
        } catch { /* our own damage may refuse it */ }
      }
    }
    for (const f of [() => port.txsync(), () => port.rxsync()]) {
      syncs++;
      try {
        f();
      } catch {
        errors++;
      }
    }
  }
  out({ syncs, errors });
} else if (args.mode === "script") {
  // Interactive: one command per stdin line, one JSON reply line each.
  //   send DST COUNT LEN   (DST: a number = that test MAC, or bcast)
  //   recv MS              (frames that arrive within MS ms, until 200 ms of quiet)
  //   quit
  console.log("ready");
  const id = args.id ?? 1;
  let seq = 0;
  const dec = new TextDecoder();
  let buf = "";
  const lines = async function* () {
    for await (const chunk of Deno.stdin.readable) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        yield buf.slice(0, i);
        buf = buf.slice(i + 1);
      }
    }
  };
  for await (const line of lines()) {
    const [cmd, a, b, c] = line.trim().split(/\s+/);
    if (cmd === "quit") break;
    if (cmd === "send") {
      const dst = a === "bcast" ? BROADCAST : mac(Number(a));
      let sent = 0;
      for (let i = 0; i < Number(b); i++) {
        if (port.send(makeFrame(dst, mac(id), seq++, id, Number(c)))) sent++;
      }
      port.txsync();
      out({ sent });
    } else if (cmd === "recv") {
      const frames: { sender: number; seq: number; len: number; dst: string }[] = [];
      let bad = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < Number(a)) {
        const batch = await port.receive(200);
        if (!batch.length && frames.length) break;
        for (const f of batch) {
          const r = checkFrame(f);
          if (typeof r === "string") bad++;
          else {
            frames.push({
              ...r,
              len: f.length,
              dst: [...f.subarray(0, 6)].map((x) => x.toString(16).padStart(2, "0")).join(":"),
            });
          }
        }
      }
      out({ frames, bad });
    } else out({ error: `unknown command ${cmd}` });
  }
} else if (args.mode === "idle") {
  console.log("ready");
  const batch = await port.receive(args.maxMs ?? 2000);
  out({ received: batch.length });
}
if (args.hold) await waitLine();
port.close();
