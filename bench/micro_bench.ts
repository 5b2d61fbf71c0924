// Deno.bench micro-benchmarks of the hot calls. Run: deno task bench
// Each iteration is one call; for batch calls Deno's per-iteration time
// divided by the batch size is the per-packet cost.
import { vale } from "../ffi/lib.ts";
import { openPort } from "../lib/mod.ts";

const runDir = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "vale-bench-" });
const o = { runDir };
const a = openPort("valeb:a", o);
const b = openPort("valeb:b", o);
const c = openPort("valeb:c", o);
const lib = vale();

function frame(dst: number[], src: number[], len = 60): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}
const MAC_A = [2, 0, 0, 0, 0, 0xa], MAC_B = [2, 0, 0, 0, 0, 0xb];
// b announces itself so unicast to it is learned
b.send(frame([255, 255, 255, 255, 255, 255], MAC_B));
b.txsync();
a.tryReceive();
c.tryReceive();

/** Fill every slot of p's TX ring with one frame once (pkt-gen then only sets lengths). */
function prefill(p: typeof a, dst: number[]) {
  const r = p.txRings[0];
  const f = frame(dst, MAC_A);
  for (let i = 0; i < r.numSlots; i++) r.buffer(i).set(f);
}
const d = openPort("valeb:d", o);
prefill(a, MAC_B);
prefill(d, [255, 255, 255, 255, 255, 255]);

function queue(n: number, p = a) {
  const r = p.txRings[0];
  let h = r.head;
  for (let i = 0; i < n; i++) {
    r.setLen(h, 60);
    r.setFlags(h, 0);
    h = r.next(h);
  }
  r.advance(h);
}
function drain(p: typeof b) {
  p.rxsync();
  for (const r of p.rxRings) r.advance(r.tail);
  p.rxsync();
}

Deno.bench("FFI call (vale_abi_version)", { group: "ffi" }, () => {
  lib.vale_abi_version();
});
Deno.bench("rxsync, nothing pending", { group: "ffi" }, () => {
  b.rxsync();
});

for (const n of [1, 64, 512]) {
  Deno.bench(`txsync ${n} x 60 B, learned unicast (lookup + copy + rxsync)`, {
    group: "txsync",
    n: 1,
  }, (t) => {
    t.start();
    queue(n);
    a.txsync();
    t.end();
    drain(b);
  });
}
Deno.bench("txsync 512 x 60 B, broadcast to 3 ports", { group: "txsync" }, (t) => {
  t.start();
  queue(512, d);
  d.txsync();
  t.end();
  drain(a);
  drain(b);
  drain(c);
});
Deno.bench("TS send() x 64 + txsync (convenience path)", { group: "ts" }, () => {
  const f = frame(MAC_B, MAC_A);
  for (let i = 0; i < 64; i++) a.send(f);
  a.txsync();
  drain(b);
});
Deno.bench("TS tryReceive() of 64 frames", { group: "ts" }, (t) => {
  const f = frame(MAC_B, MAC_A);
  for (let i = 0; i < 64; i++) a.send(f);
  a.txsync();
  t.start();
  b.tryReceive();
  t.end();
});

globalThis.addEventListener("unload", () => {
  a.close();
  d.close();
  b.close();
  c.close();
  Deno.removeSync(runDir, { recursive: true });
});
