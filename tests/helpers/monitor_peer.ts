// A process for tests/monitor_test.ts (and the replay test's receiver).
//
//   deno run -A tests/helpers/monitor_peer.ts '<json>'
//
// mode "port": opens `port`, prints "ready", waits for a line on stdin, then
//   sends `count` test frames (sender `id`, to MAC `dst`, lengths from `seed`)
//   in bursts while receiving, and keeps receiving until `expect` frames came
//   or `idleMs` passed without any. Prints {sent, frames}.
// mode "mon": opens `port` (a monitor name), prints "ready", receives until
//   `expect` frames or `idleMs` of silence (never reads with `noRead`, until a
//   line on stdin). Prints {frames}.
// With `hold`, the port stays open after the result until a line on stdin.
// frames: [sender, seq, len] per frame received, in order; a frame that is
//   not byte for byte what its header says is reported in `bad`.
// Every loop is bounded in count and time.
import { openPort } from "../../lib/mod.ts";
import { checkFrame, mac, makeFrame, prng } from "./frames.ts";

interface Args {
  port: string;
  mode: "port" | "mon";
  id?: number;
  dst?: number;
  count?: number;
  seed?: number;
  burst?: number;
  expect?: number;
  idleMs?: number;
  maxMs?: number;
  noRead?: boolean;
  /** after printing the result, keep the port open until a line on stdin */
  hold?: boolean;
}

/** The length of frame `seq` of a sender seeded with `seed` (60..1514). */
export function frameLen(seed: number, seq: number): number {
  const r = prng(seed * 100003 + seq);
  return 60 + Math.floor(r() * (1514 - 60 + 1));
}

if (import.meta.main) {
  const args: Args = JSON.parse(Deno.args[0]);
  const port = openPort(args.port);
  const out = (o: unknown) => console.log(JSON.stringify(o));
  const frames: number[][] = [];
  const bad: string[] = [];
  const take = (batch: Uint8Array[]) => {
    for (const f of batch) {
      const r = checkFrame(f);
      if (typeof r === "string") bad.push(r);
      else frames.push([r.sender, r.seq, f.length]);
    }
  };
  const stdinLine = async () => {
    const buf = new Uint8Array(64);
    await Deno.stdin.read(buf);
  };
  console.log("ready");
  const maxMs = args.maxMs ?? 30000, idleMs = args.idleMs ?? 2000;
  if (args.mode === "mon" && args.noRead) {
    await stdinLine();
    out({ frames: [], bad });
  } else {
    if (args.mode === "port") await stdinLine();
    let sent = 0;
    const t0 = Date.now();
    let last = Date.now();
    const count = args.count ?? 0, burst = args.burst ?? 32;
    const me = mac(args.id ?? 1), to = mac(args.dst ?? 2);
    while (Date.now() - t0 < maxMs) {
      if (sent < count) {
        const n = Math.min(burst, count - sent);
        let queued = 0;
        for (; queued < n; queued++) {
          const seq = sent + queued;
          if (!port.send(makeFrame(to, me, seq, args.id ?? 1, frameLen(args.seed ?? 1, seq)))) {
            break;
          }
        }
        port.txsync();
        sent += queued;
        last = Date.now();
      }
      const got = port.tryReceive();
      if (got.length) {
        take(got);
        last = Date.now();
      } else if (sent >= count) {
        if (args.expect !== undefined && frames.length + bad.length >= args.expect) break;
        if (Date.now() - last > idleMs) break;
        await port.wait(Math.min(200, idleMs));
      }
    }
    out({ sent, frames, bad });
  }
  if (args.hold) await stdinLine();
  port.close();
}
