/**
 * `Network.tcp` with a VM at one end or both: busybox `nc` in the guest
 * (through its console), a small Deno program in a host; each side reports
 * the byte count and SHA-256 of what it sent or received (a guest cannot
 * run the pattern check of the host-to-host case).
 *
 * @module
 */
import { Errno, ValeError } from "../errors.ts";
import type { Host } from "./host.ts";
import { Vm } from "./vm.ts";

/** What {@link tcpWithVm} counted (Network's TcpResult; not imported: network.ts imports this). */
export interface VmTcpResult {
  /** Bytes the sender wrote. */
  sent: number;
  /** Bytes the receiver got. */
  received: number;
  /** -1: the content arrived intact (SHA-256); 0: it differs (the position is not known). */
  firstBadByte: number;
  /** Seconds the transfer took (a guest receiver: from the sender's start to its report). */
  seconds: number;
  /** Goodput, bit/s. */
  bitsPerSecond: number;
}

const sha256Hex = async (b: Uint8Array<ArrayBuffer>): Promise<string> =>
  [...new Uint8Array(await crypto.subtle.digest("SHA-256", b))].map((x) =>
    x.toString(16).padStart(2, "0")
  ).join("");

/**
 * TCP with a VM at one end or both: busybox nc in the guest (through its
 * console), a small Deno program in a host; the receiver reports the byte
 * count and SHA-256 of what it got, the sender those of what it sent.
 */
export async function tcpWithVm(
  a: Host | Vm,
  b: Host | Vm,
  o: { bytes: number; port?: number; timeoutMs?: number },
): Promise<VmTcpResult> {
  const from = a.name, to = b.name;
  const dst = b.ip;
  if (!dst) throw new ValeError(Errno.EINVAL, `${to} has no IPv4 address`);
  if (!Number.isSafeInteger(o.bytes) || o.bytes < 0) {
    throw new ValeError(Errno.EINVAL, `tcp: bytes must be a non-negative integer`);
  }
  const port = o.port ?? 5201;
  const ms = o.timeoutMs ?? 60000;
  const end = Date.now() + ms;
  const deno = Deno.execPath();
  const t = `/tmp/.vale-tcp${port}`;
  const parse = (text: string, who: string) => {
    const m = /^R (\d+) ([0-9a-f]{64})(?: (\d+))?$/m.exec(text);
    if (!m) {
      throw new ValeError(Errno.EINVAL, `tcp: ${who} reported nothing: ${text.trim().slice(-300)}`);
    }
    return { n: Number(m[1]), sha: m[2], ms: m[3] ? Number(m[3]) : 0 };
  };

  // the receiver
  let recv: () => Promise<{ n: number; sha: string; ms: number }>;
  let cleanup = async () => {};
  if (b instanceof Vm) {
    // nc's stdin stays open (a FIFO held by a second job): busybox nc ends a
    // connection soon after EOF on its stdin
    const r = await b.sh(
      `rm -f ${t}.*; mkfifo ${t}.in
( nc -l -p ${port} <${t}.in >${t}.rx; echo $? >${t}.done ) </dev/null >/dev/null 2>&1 &
( exec 3>${t}.in; n=0; until [ -f ${t}.done ] || [ $n -ge 6000 ]; do sleep 0.1; n=$((n + 1)); done ) </dev/null >/dev/null 2>&1 &
n=0; until netstat -ltn 2>/dev/null | grep -q ":${port} " || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
netstat -ltn 2>/dev/null | grep -q ":${port} "`,
      { timeoutMs: ms },
    );
    if (!r.success) {
      throw new ValeError(Errno.EINVAL, `tcp: nc did not listen in ${to}: ${r.stdout}`);
    }
    cleanup = async () => {
      await b.sh(`pkill -f "nc -l -p ${port}"; touch ${t}.done; sleep 0.2; rm -f ${t}.*`).catch(
        () => {},
      );
    };
    recv = async () => {
      for (;;) {
        const left = end - Date.now();
        if (left <= 0) {
          throw new ValeError(Errno.ETIMEDOUT, `tcp: ${to} received nothing in ${ms} ms`);
        }
        const r = await b.sh(
          `n=0; until [ -f ${t}.done ] || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -f ${t}.done ] && echo "R $(wc -c <${t}.rx) $(sha256sum <${t}.rx | cut -d' ' -f1)"`,
          { timeoutMs: left + 10000 },
        );
        if (r.success) return parse(r.stdout, to);
      }
    };
  } else {
    const sink = b.spawn([
      deno,
      "eval",
      "--no-config",
      `const l = Deno.listen({ hostname: ${JSON.stringify(dst)}, port: ${port} });
      console.log("listening");
      const c = await l.accept();
      const parts = [];
      let n = 0, t0 = 0;
      for (;;) {
        const buf = new Uint8Array(1 << 20);
        const k = await c.read(buf);
        if (k === null) break;
        if (!t0) t0 = performance.now();
        parts.push(buf.subarray(0, k));
        n += k;
      }
      const ms = t0 ? Math.round(performance.now() - t0) : 0;
      const all = new Uint8Array(n);
      let o = 0;
      for (const p of parts) { all.set(p, o); o += p.length; }
      const d = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
      console.log("R " + n + " " + [...d].map((x) => x.toString(16).padStart(2, "0")).join("") + " " + ms);`,
    ]);
    const reader = sink.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let outText = "";
    while (!outText.includes("listening\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      outText += value;
    }
    cleanup = async () => {
      try {
        sink.kill("SIGKILL");
      } catch { /* ended */ }
      await sink.status.catch(() => {});
      await sink.stderr.cancel().catch(() => {});
    };
    if (!outText.includes("listening\n")) {
      await cleanup();
      throw new ValeError(Errno.EINVAL, `tcp: the receiver in ${to} did not start`);
    }
    recv = async () => {
      const timer = setTimeout(() => cleanup(), Math.max(0, end - Date.now()));
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          outText += value;
        }
      } finally {
        clearTimeout(timer);
      }
      return parse(outText, to);
    };
  }

  try {
    // the sender
    const t0 = performance.now();
    let sent: { n: number; sha: string };
    if (a instanceof Vm) {
      const r = await a.sh(
        `head -c ${o.bytes} /dev/urandom >${t}.tx || exit 1
echo "R $(wc -c <${t}.tx) $(sha256sum <${t}.tx | cut -d' ' -f1)"
n=0; until nc ${dst} ${port} <${t}.tx; do
  n=$((n + 1)); [ $n -ge 50 ] && { rm -f ${t}.tx; exit 2; }; sleep 0.2
done
rm -f ${t}.tx`,
        { timeoutMs: Math.max(1000, end - Date.now()) },
      );
      if (!r.success) {
        throw new ValeError(Errno.EINVAL, `tcp: the sender in ${from} failed: ${r.stdout}`);
      }
      sent = parse(r.stdout, from);
    } else {
      const data = new Uint8Array(o.bytes);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + Math.floor(i / 8192)) & 255;
      const want = await sha256Hex(data);
      const r = await a.run([
        deno,
        "eval",
        "--no-config",
        `const total = ${o.bytes};
        const pat = (i) => (i * 7 + Math.floor(i / 8192)) & 255;
        let c;
        for (let k = 0; ; k++) {
          try { c = await Deno.connect({ hostname: ${
          JSON.stringify(dst)
        }, port: ${port} }); break; }
          catch (e) { if (k >= 50) throw e; await new Promise((r) => setTimeout(r, 200)); }
        }
        const buf = new Uint8Array(1 << 20);
        let off = 0;
        while (off < total) {
          const k = Math.min(buf.length, total - off);
          for (let i = 0; i < k; i++) buf[i] = pat(off + i);
          let w = 0;
          while (w < k) w += await c.write(buf.subarray(w, k));
          off += k;
        }
        c.close();
        console.log("sent " + off);`,
      ], { timeoutMs: Math.max(1000, end - Date.now()) });
      const m = /^sent (\d+)$/m.exec(r.stdout);
      if (!r.success || !m) {
        throw new ValeError(Errno.EINVAL, `tcp: the sender in ${from} failed: ${r.stderr.trim()}`);
      }
      sent = { n: Number(m[1]), sha: want };
    }
    const got = await recv();
    // a guest does not time its receiving: then from the sender's start to the receiver's report
    const seconds = (got.ms || performance.now() - t0) / 1000;
    return {
      sent: sent.n,
      received: got.n,
      firstBadByte: got.n === sent.n && got.sha === sent.sha ? -1 : 0,
      seconds,
      bitsPerSecond: seconds > 0 ? (got.n * 8) / seconds : 0,
    };
  } finally {
    await cleanup();
  }
}
