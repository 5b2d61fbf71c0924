/**
 * Traffic with exact accounting, run inside a network namespace by the kernel tests
 * (`ip netns exec NS deno run -A --unstable-net tests/helpers/netload.ts MODE ...`):
 *
 *   tcp-sink HOST PORT            accept one connection, read to EOF, check every byte
 *                                 against the pattern; prints {"n", "bad"} (bad: first
 *                                 wrong offset or -1)
 *   tcp-source HOST PORT BYTES    connect and send BYTES of the pattern
 *   udp-sink HOST PORT N SIZE MS  receive until N datagrams or MS ms of silence; prints
 *                                 {"got", "distinct", "bad"} (bad: wrong size or content)
 *   udp-source HOST PORT N SIZE   send N datagrams of SIZE bytes (sequence number + pattern)
 *                                 with a window: at most ~96 KB ahead of what the sink has
 *                                 acknowledged (a datagram back every 8), so that the sink's
 *                                 socket buffer never overflows on a loaded machine and the
 *                                 count can be exact (a lost datagram is never resent)
 *
 * A sink prints "listening" first. The pattern: byte i of the stream is
 * (i * 7 + floor(i / 8192)) & 255, so a lost, duplicated or reordered chunk is seen.
 *
 * @module
 */

const pat = (i: number) => (i * 7 + Math.floor(i / 8192)) & 255;

async function tcpSink(host: string, port: number): Promise<void> {
  const l = Deno.listen({ hostname: host, port });
  console.log("listening");
  const c = await l.accept();
  const buf = new Uint8Array(1 << 20);
  let n = 0, bad = -1;
  for (;;) {
    const k = await c.read(buf);
    if (k === null) break;
    if (bad < 0) {
      for (let i = 0; i < k; i++) {
        if (buf[i] !== pat(n + i)) {
          bad = n + i;
          break;
        }
      }
    }
    n += k;
  }
  console.log(JSON.stringify({ n, bad }));
}

async function tcpSource(host: string, port: number, bytes: number): Promise<void> {
  const c = await Deno.connect({ hostname: host, port });
  const chunk = 1 << 20, buf = new Uint8Array(chunk);
  for (let off = 0; off < bytes; off += chunk) {
    const len = Math.min(chunk, bytes - off);
    for (let i = 0; i < len; i++) buf[i] = pat(off + i);
    for (let w = 0; w < len;) w += await c.write(buf.subarray(w, len));
  }
  c.close();
}

/** Datagram `seq` of `size` bytes: the sequence number (u32 LE), then the pattern from seq. */
function datagram(seq: number, size: number, out: Uint8Array): Uint8Array {
  new DataView(out.buffer).setUint32(0, seq, true);
  for (let i = 4; i < size; i++) out[i] = pat(seq + i);
  return out.subarray(0, size);
}

async function udpSink(host: string, port: number, n: number, size: number, ms: number) {
  const s = Deno.listenDatagram({ hostname: host, port, transport: "udp" });
  console.log("listening");
  const seen = new Uint8Array(n);
  const want = new Uint8Array(size);
  let got = 0, distinct = 0, bad = 0;
  while (distinct < n) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      s.receive(),
      new Promise<null>((res) => timer = setTimeout(() => res(null), ms)),
    ]);
    clearTimeout(timer);
    if (!r) break;
    const [d] = r;
    got++;
    if (d.length !== size) {
      bad++;
      continue;
    }
    const seq = new DataView(d.buffer, d.byteOffset).getUint32(0, true);
    datagram(seq, size, want);
    let ok = seq < n;
    for (let i = 4; ok && i < size; i++) ok = d[i] === want[i];
    if (!ok) {
      bad++;
      continue;
    }
    if (!seen[seq]) distinct++;
    seen[seq] = 1;
    if (got % 8 === 0) await ack(s, r[1], got);
  }
  console.log(JSON.stringify({ got, distinct, bad }));
  s.close();
}

/** Tells the source how many datagrams arrived (the window's flow control). */
async function ack(s: Deno.DatagramConn, to: Deno.Addr, got: number): Promise<void> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, got, true);
  await s.send(b, to);
}

async function udpSource(host: string, port: number, n: number, size: number) {
  const s = Deno.listenDatagram({ hostname: "0.0.0.0", port: 0, transport: "udp" });
  const buf = new Uint8Array(size);
  const to = { hostname: host, port, transport: "udp" as const };
  const window = Math.max(8, Math.min(64, Math.floor(96000 / size)));
  let acked = 0;
  // acknowledgements arrive on their own; a lost one only makes the next wait time out
  const acks = (async () => {
    for (;;) {
      const r = await s.receive().catch(() => null);
      if (!r) return;
      acked = Math.max(acked, new DataView(r[0].buffer, r[0].byteOffset).getUint32(0, true));
    }
  })();
  for (let seq = 0; seq < n; seq++) {
    for (let waited = 0; seq - acked >= window && waited < 1000; waited++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    await s.send(datagram(seq, size, buf), to);
  }
  s.close();
  await acks;
}

if (import.meta.main) {
  const [mode, host, port, a, b, c] = Deno.args;
  switch (mode) {
    case "tcp-sink":
      await tcpSink(host, Number(port));
      break;
    case "tcp-source":
      await tcpSource(host, Number(port), Number(a));
      break;
    case "udp-sink":
      await udpSink(host, Number(port), Number(a), Number(b), Number(c));
      break;
    case "udp-source":
      await udpSource(host, Number(port), Number(a), Number(b));
      break;
    default:
      console.error("usage: netload.ts tcp-sink|tcp-source|udp-sink|udp-source HOST PORT ...");
      Deno.exit(2);
  }
}
