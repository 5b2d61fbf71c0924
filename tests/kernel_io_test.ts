// Kernel interfaces (c-src/io/*.c through lib/backends/kernel_io.ts): TAP, AF_PACKET
// and AF_XDP on veth pairs and TAP devices this test creates itself, each in
// its own network namespace named vt<pid>…, removed in `finally` blocks.
// Nothing here touches an interface it did not create. Every loop is bounded
// in count and time. Without CAP_NET_ADMIN/CAP_NET_RAW/CAP_SYS_ADMIN (root)
// the tests are registered as ignored with the reason in their name.

import assert from "node:assert/strict";
import { haveCmd, netSkipReason, testGroup } from "./helpers/machine.ts";
import {
  BUF_SIZE,
  KernelIo,
  KernelIoError,
  type KernelIoOptions,
  MOREFRAG,
  POLL_IN,
  POLL_OUT,
} from "../lib/backends/kernel_io.ts";

const dec = new TextDecoder();
const enc = new TextEncoder();
const TAG = `vt${Deno.pid}`;

// ---------------------------------------------------------------- privileges

const skipReason = netSkipReason([["ip", ["-V"]]]);
const ktest = testGroup("kernel_io", skipReason);

// ---------------------------------------------------------------- helpers

function run(cmd: string, args: string[]): string {
  const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(r.stderr).trim()}`);
  }
  return dec.decode(r.stdout);
}
const ip = (...args: string[]) => run("ip", args);

let nsCount = 0;
/** A fresh namespace with lo up and IPv6 off (no stray DAD/MLD frames). */
function makeNs(): string {
  const ns = `${TAG}n${nsCount++}`;
  ip("netns", "add", ns);
  ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1");
  ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1");
  ip("-n", ns, "link", "set", "lo", "up");
  return ns;
}
function delNs(ns: string) {
  try {
    ip("netns", "del", ns);
  } catch { /* already gone */ }
}
/** veth pair a <-> b inside ns, up, with `queues` RX/TX queues per end. */
function makeVeth(ns: string, a: string, b: string, queues = 1, mtu = 0) {
  const q = ["numtxqueues", `${queues}`, "numrxqueues", `${queues}`];
  ip("-n", ns, "link", "add", a, ...q, "type", "veth", "peer", "name", b, ...q);
  for (const d of [a, b]) {
    if (mtu) ip("-n", ns, "link", "set", d, "mtu", `${mtu}`);
    ip("-n", ns, "link", "set", d, "up");
  }
}

const ETH_TEST = 0x88b5; // IEEE local experimental ethertype

/** A test frame: broadcast, our ethertype, seq, then a pattern from seq. */
function frame(len: number, seq: number, src = 0x02): Uint8Array {
  const f = new Uint8Array(len);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0x76, 0x74, 0, 0, src], 6);
  f[12] = ETH_TEST >> 8;
  f[13] = ETH_TEST & 0xff;
  new DataView(f.buffer).setUint32(14, seq);
  for (let i = 18; i < len; i++) f[i] = (seq * 31 + i * 7) & 0xff;
  return f;
}
const isTest = (f: Uint8Array) => f.length >= 18 && f[12] === 0x88 && f[13] === 0xb5;

/** Receive until `want` frames pass `filter` or `ms` pass. */
function collect(
  io: KernelIo,
  want: number,
  ms: number,
  filter: (f: Uint8Array) => boolean = isTest,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  const end = Date.now() + ms;
  while (out.length < want && Date.now() < end) {
    const got = io.recv();
    for (const f of got) if (filter(f)) out.push(f);
    if (got.length === 0) io.poll(POLL_IN, Math.max(1, Math.min(50, end - Date.now())));
  }
  return out;
}

/** Send all frames (waiting for TX room), receiving on `rx` meanwhile. */
function pump(tx: KernelIo, rx: KernelIo, frames: Uint8Array[], ms = 5000): Uint8Array[] {
  const got: Uint8Array[] = [];
  const end = Date.now() + ms;
  let i = 0;
  while (i < frames.length && Date.now() < end) {
    const n = tx.send(frames.slice(i, i + 128));
    i += n;
    for (const f of rx.recv()) if (isTest(f)) got.push(f);
    if (n === 0) tx.poll(POLL_OUT, 10);
  }
  assert.equal(i, frames.length, `sent only ${i} of ${frames.length} frames`);
  got.push(...collect(rx, frames.length - got.length, Math.max(500, end - Date.now())));
  return got;
}

function assertSame(got: Uint8Array[], want: Uint8Array[]) {
  assert.equal(got.length, want.length, `received ${got.length} frames, want ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    assert.equal(got[i].length, want[i].length, `frame ${i}: length`);
    assert.deepEqual(got[i], want[i], `frame ${i}: payload`);
  }
}

function expectErr(fn: () => unknown, code: string, re?: RegExp): KernelIoError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KernelIoError, `not a KernelIoError: ${e}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** IPv4/UDP frame with a valid IP header checksum and UDP checksum 0. */
function udpFrame(
  dstMac: string,
  srcMac: string,
  src: string,
  dst: string,
  dport: number,
  payload: Uint8Array,
): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + payload.length);
  const v = new DataView(f.buffer);
  f.set(dstMac.split(":").map((x) => parseInt(x, 16)), 0);
  f.set(srcMac.split(":").map((x) => parseInt(x, 16)), 6);
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, 20 + 8 + payload.length);
  f[22] = 64;
  f[23] = 17;
  f.set(src.split(".").map(Number), 26);
  f.set(dst.split(".").map(Number), 30);
  let s = 0;
  for (let i = 14; i < 34; i += 2) s += v.getUint16(i);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  v.setUint16(24, ~s & 0xffff);
  v.setUint16(34, 40000);
  v.setUint16(36, dport);
  v.setUint16(38, 8 + payload.length);
  f.set(payload, 42);
  return f;
}

/** Is the UDP checksum of an Ethernet/IPv4/UDP frame right? */
function udpChecksumOk(f: Uint8Array): boolean {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const ihl = (f[14] & 15) * 4;
  const l4 = 14 + ihl;
  const ulen = v.getUint16(l4 + 4);
  let s = 0;
  for (let i = 26; i < 34; i += 2) s += v.getUint16(i);
  s += 17 + ulen;
  for (let i = 0; i + 1 < ulen; i += 2) s += v.getUint16(l4 + i);
  if (ulen & 1) s += f[l4 + ulen - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s === 0xffff;
}

/** Run deno code in a namespace (stdout returned); killed after `ms`. */
function nsDeno(ns: string, code: string, ms = 20000): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "eval", "--unstable-net", code],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).spawn();
}

// ---------------------------------------------------------------- tests

ktest("link queries and clear errors", () => {
  const ns = makeNs();
  try {
    makeVeth(ns, `${TAG}a`, `${TAG}b`);
    const l = KernelIo.link(`${TAG}a`, ns);
    assert.ok(l.ifindex > 0 && l.up && l.mtu === 1500, JSON.stringify(l));
    assert.match(l.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);

    expectErr(
      () => KernelIo.open(`${TAG}zz`, { kind: "packet", netns: ns }),
      "ENODEV",
      new RegExp(`no network interface '${TAG}zz'`),
    );
    expectErr(() => KernelIo.link(`${TAG}zz`, ns), "ENODEV");
    expectErr(
      () => KernelIo.open(`${TAG}a`, { kind: "packet", netns: `${TAG}nope` }),
      "ENOENT",
      /network namespace/,
    );
    expectErr(() => KernelIo.open("a-name-much-too-long", { kind: "packet" }), "EINVAL");

    KernelIo.setLink(`${TAG}a`, { up: false, netns: ns });
    for (const kind of ["packet", "xdp", "auto"] as const) {
      expectErr(
        () => KernelIo.open(`${TAG}a`, { kind, netns: ns }),
        "ENETDOWN",
        new RegExp(`'${TAG}a' is down`),
      );
    }
    // `up` brings it up; allowDown opens it anyway
    using io = KernelIo.open(`${TAG}a`, { kind: "packet", netns: ns, up: true });
    assert.ok(KernelIo.link(`${TAG}a`, ns).up);
    io.close();
    KernelIo.setLink(`${TAG}a`, { up: false, netns: ns });
    using io2 = KernelIo.open(`${TAG}a`, { kind: "packet", netns: ns, allowDown: true });
    expectErr(() => io2.check(), "ENETDOWN");
    expectErr(() => io2.poll(POLL_IN, 50), "ENETDOWN");
    // a device that is not a TAP
    expectErr(() => KernelIo.open(`${TAG}b`, { kind: "tap", netns: ns }), "EINVAL", /not a TAP/);
  } finally {
    delNs(ns);
  }
});

Deno.test({
  name: haveCmd("setpriv", ["--version"])
    ? `kernel_io: errors name the missing privilege${skipReason ? ` (skipped: ${skipReason})` : ""}`
    : "kernel_io: errors name the missing privilege (skipped: needs setpriv)",
  ignore: !!skipReason || !haveCmd("setpriv", ["--version"]),
  sanitizeResources: false,
  async fn() {
    // an interface in our own namespace, so an unprivileged process can name it
    const a = `${TAG}p0`, b = `${TAG}p1`;
    const denoDir = await Deno.makeTempDir({ prefix: `${TAG}deno` });
    try {
      ip("link", "add", a, "type", "veth", "peer", "name", b);
      ip("link", "set", a, "up");
      await Deno.chmod(denoDir, 0o777);
      const mod = import.meta.resolve("../lib/backends/kernel_io.ts");
      const code = `
        import { KernelIo } from "${mod}";
        const out = {};
        for (const [k, name] of [["packet", "${a}"], ["xdp", "${a}"], ["tap", "${TAG}t9"]]) {
          try { KernelIo.open(name, { kind: k }).close(); out[k] = "opened"; }
          catch (e) { out[k] = e.code + " " + e.message; }
        }
        console.log(JSON.stringify(out));`;
      const unprivileged = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        Deno.execPath(),
        "eval",
        code,
      ];
      /** Run the probe as nobody; with `tunMode`, over a private /dev/net/tun of that mode. */
      const probe = async (tunMode?: number) => {
        let cmd = unprivileged;
        if (tunMode !== undefined) {
          // the host's /dev/net/tun is 0666 on some distributions and 0600 on others: the
          // child gets its own node (same device numbers, our mode) bind-mounted over it in a
          // private mount namespace, so both cases run whatever the host has
          const node = `${denoDir}/tun-${tunMode.toString(8)}`;
          const st = Deno.statSync("/dev/net/tun");
          const rdev = st.rdev ?? 0;
          const major = (rdev >> 8) & 0xfff, minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
          const mk = new Deno.Command("mknod", {
            args: ["-m", tunMode.toString(8), node, "c", `${major}`, `${minor}`],
          }).outputSync();
          assert.ok(mk.success, new TextDecoder().decode(mk.stderr));
          cmd = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$1" /dev/net/tun && shift && exec "$@"',
            "sh",
            node,
            ...unprivileged,
          ];
        }
        const r = await new Deno.Command(cmd[0], {
          args: cmd.slice(1),
          env: { DENO_DIR: denoDir, HOME: denoDir, DENO_NO_UPDATE_CHECK: "1" },
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(30000),
        }).output();
        const text = dec.decode(r.stdout).trim();
        assert.ok(r.success && text, `child failed: ${dec.decode(r.stderr)}`);
        return JSON.parse(text.split("\n").pop()!);
      };
      if (!haveCmd("unshare", ["--version"]) || !haveCmd("mknod", ["--version"])) {
        // cannot pin the mode: the host's decides which error comes; both name the privilege
        const out = await probe();
        assert.match(out.packet, /^EPERM .*needs CAP_NET_RAW/, out.packet);
        assert.match(out.tap, /^(EPERM|EACCES) .*needs .*CAP_NET_ADMIN/, out.tap);
        return;
      }
      // 0666 (Debian, Ubuntu): the open works, creating the TAP is refused
      const open = await probe(0o666);
      assert.match(open.packet, /^EPERM .*needs CAP_NET_RAW/, open.packet);
      assert.match(open.xdp, /^EPERM .*needs CAP_NET_RAW/, open.xdp);
      assert.match(open.tap, /^EPERM .*needs CAP_NET_ADMIN/, open.tap);
      // 0600 (a fresh machine, some distributions): the open itself is refused
      const closed = await probe(0o600);
      assert.match(
        closed.tap,
        /^EACCES cannot open \/dev\/net\/tun: .*not accessible to this user: needs read\/write access to \/dev\/net\/tun, and CAP_NET_ADMIN/,
        closed.tap,
      );
    } finally {
      try {
        ip("link", "del", a);
      } catch { /* gone */ }
      await Deno.remove(denoDir, { recursive: true });
    }
  },
});

ktest("TAP: kernel frames in, our frames out", async (t) => {
  const ns = makeNs();
  const tapName = `${TAG}t`;
  const myMac = "02:76:74:00:00:02";
  try {
    using tap = KernelIo.open(tapName, { kind: "tap", netns: ns, up: true, tapExclusive: true });
    const info = tap.info();
    assert.equal(info.kind, "tap");
    assert.equal(info.ifname, tapName);
    const link = KernelIo.link(tapName, ns);
    assert.ok(link.up);
    ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", tapName);
    ip(
      "-n",
      ns,
      "neigh",
      "replace",
      "10.77.0.2",
      "lladdr",
      myMac,
      "dev",
      tapName,
      "nud",
      "permanent",
    );
    const isUdp = (port: number) => (f: Uint8Array) =>
      f.length >= 42 && f[12] === 8 && f[13] === 0 && f[23] === 17 &&
      ((f[36] << 8) | f[37]) === port;

    await t.step("a namespace's UDP datagrams arrive as frames, in batches", async () => {
      const N = 100;
      const child = nsDeno(
        ns,
        `const s = Deno.listenDatagram({ transport: "udp", hostname: "10.77.0.1", port: 0 });
         for (let i = 0; i < ${N}; i++)
           await s.send(new TextEncoder().encode("vale-" + i),
                        { transport: "udp", hostname: "10.77.0.2", port: 9999 });
         s.close();`,
      );
      const st = await child.output();
      assert.ok(st.success, dec.decode(st.stderr));
      const got = collect(tap, N, 3000, isUdp(9999));
      assert.equal(got.length, N);
      got.forEach((f, i) => {
        assert.equal(dec.decode(f.subarray(42)), `vale-${i}`);
        assert.equal(
          [...f.subarray(0, 6)].map((x) => x.toString(16).padStart(2, "0")).join(":"),
          myMac,
        );
      });
      const s = tap.stats();
      assert.ok(s.rxPkts >= BigInt(N));
      assert.ok(s.rxBatches < s.rxPkts, "frames were received in batches");
    });

    await t.step("our UDP frames reach a socket in the namespace", async () => {
      const M = 50;
      const child = nsDeno(
        ns,
        `const s = Deno.listenDatagram({ transport: "udp", hostname: "10.77.0.1", port: 9998 });
         console.log("ready");
         let n = 0, ok = 0;
         const done = () => { console.log("count " + n + " ok " + ok); Deno.exit(0); };
         setTimeout(done, 5000);
         for await (const [d] of s) {
           n++;
           if (new TextDecoder().decode(d) === "to-kernel-" + (n - 1)) ok++;
           if (n === ${M}) done();
         }`,
      );
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let first = "";
      while (!first.includes("ready")) {
        const { value, done } = await reader.read();
        if (done) break;
        first += value;
      }
      assert.match(first, /ready/);
      const before = JSON.parse(ip("-j", "-s", "-n", ns, "link", "show", tapName))[0].stats64.rx
        .packets;
      const frames = Array.from(
        { length: M },
        (_, i) =>
          udpFrame(link.mac, myMac, "10.77.0.2", "10.77.0.1", 9998, enc.encode(`to-kernel-${i}`)),
      );
      assert.equal(tap.send(frames), M);
      let rest = first;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
      }
      await child.status;
      assert.match(rest, new RegExp(`count ${M} ok ${M}`));
      const after = JSON.parse(ip("-j", "-s", "-n", ns, "link", "show", tapName))[0].stats64.rx
        .packets;
      assert.ok(after - before >= M, `rx counter moved by ${after - before}`);
      assert.equal(tap.stats().txPkts, BigInt(M));
    });

    await t.step("raw frames both ways (AF_PACKET on the kernel side of the TAP)", () => {
      using raw = KernelIo.open(tapName, { kind: "packet", netns: ns });
      const N = 300;
      const frames = Array.from({ length: N }, (_, i) => frame(60 + (i * 37) % 1455, i));
      assertSame(pump(raw, tap, frames), frames); // kernel side -> TAP handle
      assertSame(pump(tap, raw, frames), frames); // TAP handle -> kernel side
    });

    await t.step("IFF_VNET_HDR: the virtio-net header is added and stripped", () => {
      using vt = KernelIo.open(`${TAG}v`, { kind: "tap", netns: ns, up: true, tapVnetHdr: true });
      assert.match(vt.info().mode, /vnet_hdr/);
      using raw = KernelIo.open(`${TAG}v`, { kind: "packet", netns: ns });
      const frames = Array.from({ length: 50 }, (_, i) => frame(60 + i * 29, i));
      assertSame(pump(raw, vt, frames), frames);
      assertSame(pump(vt, raw, frames), frames);
    });
  } finally {
    delNs(ns);
  }
});

ktest("PACKET on a veth pair: exactly N frames, payloads intact", async (t) => {
  const ns = makeNs();
  const a = `${TAG}a`, b = `${TAG}b`;
  try {
    makeVeth(ns, a, b);
    const variants: [string, KernelIoOptions][] = [
      ["tpacket v2 (default)", {}],
      ["tpacket v3 blocks", { rxV3: true }],
      ["qdisc bypass", { qdiscBypass: true }],
    ];
    for (const [name, o] of variants) {
      await t.step(name, () => {
        using A = KernelIo.open(a, { kind: "packet", netns: ns, ...o });
        using B = KernelIo.open(b, { kind: "packet", netns: ns, ...o });
        assert.match(A.info().mode, o.rxV3 ? /rx v3/ : /rx v2/);
        const N = 2000;
        const frames = Array.from({ length: N }, (_, i) => frame(60 + (i * 131) % 1455, i));
        assertSame(pump(A, B, frames), frames);
        const back = frames.slice(0, 500).map((f, i) => frame(f.length, 100000 + i, 3));
        assertSame(pump(B, A, back), back);
        const sa = A.stats(), sb = B.stats();
        assert.equal(sa.txPkts, BigInt(N));
        assert.equal(sb.rxPkts, BigInt(N));
        assert.equal(sb.rxKernelDrops + sa.txDrops + sb.rxTruncated, 0n);
        assert.ok(sa.txBatches < sa.txPkts / 10n, "sent in batches");
        // nothing we sent comes back to us (PACKET_IGNORE_OUTGOING)
        assert.equal(sa.rxPkts, 500n);
      });
    }
    await t.step("VLAN tags survive (the kernel strips them into metadata)", () => {
      using A = KernelIo.open(a, { kind: "packet", netns: ns });
      using B = KernelIo.open(b, { kind: "packet", netns: ns });
      const f = frame(200, 7);
      const tagged = new Uint8Array(f.length + 4);
      tagged.set(f.subarray(0, 12));
      tagged.set([0x81, 0x00, 0x20, 0x2a], 12); // VLAN 42, PCP 1
      tagged.set(f.subarray(12), 16);
      assert.equal(A.send([tagged]), 1);
      const got = collect(B, 1, 2000, (g) => g.length === tagged.length);
      assertSame(got, [tagged]);
    });
    await t.step("too small / too large frames are dropped and counted", () => {
      using A = KernelIo.open(a, { kind: "packet", netns: ns });
      assert.equal(A.send([new Uint8Array(10), frame(1600, 1)]), 2);
      assert.equal(A.stats().txDrops, 2n);
      assert.equal(A.stats().txPkts, 0n);
    });
    await t.step("partial checksums from the sending stack are completed", async () => {
      ip("-n", ns, "addr", "add", "10.78.0.1/24", "dev", a);
      ip("-n", ns, "neigh", "replace", "10.78.0.2", "lladdr", "02:76:74:00:00:09", "dev", a);
      using B = KernelIo.open(b, { kind: "packet", netns: ns });
      const child = nsDeno(
        ns,
        `const s = Deno.listenDatagram({ transport: "udp", hostname: "10.78.0.1", port: 0 });
         for (let i = 0; i < 20; i++)
           await s.send(new TextEncoder().encode("csum-" + i + "-".repeat(i * 13)),
                        { transport: "udp", hostname: "10.78.0.2", port: 7777 });
         s.close();`,
      );
      const st = await child.output();
      assert.ok(st.success, dec.decode(st.stderr));
      const got = collect(
        B,
        20,
        3000,
        (f) => f.length > 42 && f[23] === 17 && ((f[36] << 8) | f[37]) === 7777,
      );
      assert.equal(got.length, 20);
      for (const f of got) assert.ok(udpChecksumOk(f), "UDP checksum is valid");
      console.log(`    (partial checksums completed: ${B.stats().rxCsumFixed} of 20)`);
    });
  } finally {
    delNs(ns);
  }
});

ktest("large frames (MTU 9000) split across 2048-byte buffers", async (t) => {
  const ns = makeNs();
  const a = `${TAG}a`, b = `${TAG}b`, tp = `${TAG}t`;
  try {
    makeVeth(ns, a, b, 1, 9000);
    const sizes = [9014, 9018, 2048, 2049, 4096, 4097, 6000, 60, 1514, 8999];
    const frames = sizes.map((n, i) => frame(n, i));
    // the 9018-byte one carries a VLAN tag, as a 9000-byte MTU allows
    const t9018 = frames[1];
    t9018.set([0x81, 0x00, 0x00, 0x05, 0x88, 0xb5], 12);
    new DataView(t9018.buffer).setUint32(18, 1);
    const tagged = (f: Uint8Array) => f[12] === 0x81;
    const isTestOrTagged = (f: Uint8Array) => isTest(f) || tagged(f);

    const checkSplit = (io: KernelIo, want: Uint8Array) => {
      // raw buffer view: every buffer but the last is full and has MOREFRAG
      const got = collect(io, 1, 2000, () => true);
      assert.equal(got.length, 1);
      assert.deepEqual(got[0], want);
    };
    for (const kind of ["packet", "xdp"] as const) {
      await t.step(`${kind} on a veth`, () => {
        let A: KernelIo, B: KernelIo;
        try {
          A = KernelIo.open(a, { kind, netns: ns });
          B = KernelIo.open(b, { kind, netns: ns });
        } catch (e) {
          if (kind === "xdp") {
            console.log(`    (AF_XDP unavailable here: ${(e as Error).message})`);
            return;
          }
          throw e;
        }
        try {
          assert.equal(A.info().mtu, 9000);
          assert.ok(A.info().maxFrame >= 9018, `max frame ${A.info().maxFrame}`);
          const got: Uint8Array[] = [];
          for (const f of frames) {
            assert.equal(A.send([f]), 1);
            got.push(...collect(B, 1, 2000, isTestOrTagged));
          }
          assertSame(got, frames);
          // and the buffers themselves: 9014 bytes = 4 full buffers + 822
          A.send([frames[0]]);
          const end = Date.now() + 2000;
          let n = 0;
          while (n === 0 && Date.now() < end) {
            n = B.recvBatch();
            if (!n) B.poll(POLL_IN, 50);
          }
          assert.equal(n, 5);
          assert.deepEqual([...B.rxLens.subarray(0, 5)], [2048, 2048, 2048, 2048, 822]);
          assert.deepEqual([...B.rxFlags.subarray(0, 5)], [
            MOREFRAG,
            MOREFRAG,
            MOREFRAG,
            MOREFRAG,
            0,
          ]);
          // fewer buffers than the frame needs: a clear ENOBUFS, frame kept
          A.send([frames[0]]);
          B.poll(POLL_IN, 1000);
          expectErr(
            () => {
              const e2 = Date.now() + 1000;
              while (Date.now() < e2) {
                if (B.recvBatch(2) === 0) B.poll(POLL_IN, 20);
              }
            },
            "ENOBUFS",
            /needs 5 buffers, 2 given/,
          );
          checkSplit(B, frames[0]);
          assert.equal(B.stats().rxTruncated + B.stats().rxOversize, 0n);
        } finally {
          A.close();
          B.close();
        }
      });
    }
    await t.step("TAP", () => {
      using tap = KernelIo.open(tp, { kind: "tap", netns: ns, up: true, mtu: 9000 });
      using raw = KernelIo.open(tp, { kind: "packet", netns: ns });
      assert.equal(tap.info().mtu, 9000);
      const got: Uint8Array[] = [];
      for (const f of frames) {
        assert.equal(raw.send([f]), 1);
        got.push(...collect(tap, 1, 2000, isTestOrTagged));
      }
      assertSame(got, frames);
      const back: Uint8Array[] = [];
      for (const f of frames) {
        assert.equal(tap.send([f]), 1);
        back.push(...collect(raw, 1, 2000, isTestOrTagged));
      }
      assertSame(back, frames);
      // a frame bigger than what is offered waits for a bigger call
      raw.send([frames[0]]);
      tap.poll(POLL_IN, 1000);
      expectErr(() => tap.recvBatch(3), "ENOBUFS", /needs 5 buffers, 3 given/);
      checkSplit(tap, frames[0]);
    });
  } finally {
    delNs(ns);
  }
});

/** IPv4/UDP test frames of `flows` different flows (so they spread over RX queues). */
function flowFrames(n: number, flows: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const f = udpFrame(
      "02:76:74:00:00:0b",
      "02:76:74:00:00:0a",
      `10.80.${i % flows}.1`,
      "10.80.255.2",
      1000 + (i % flows),
      new Uint8Array(40 + (i % 300)).fill(i & 0xff),
    );
    new DataView(f.buffer).setUint32(42, i);
    return f;
  });
}
const isFlow = (f: Uint8Array) =>
  f.length > 46 && f[12] === 8 && f[13] === 0 && f[23] === 17 && f[30] === 10 && f[31] === 80;

ktest("AF_XDP on veth pairs, and the automatic choice", async (t) => {
  const ns = makeNs();
  const a = `${TAG}a`, b = `${TAG}b`, c = `${TAG}c`, d = `${TAG}d`;
  try {
    makeVeth(ns, a, b, 1);
    makeVeth(ns, c, d, 2);
    let A: KernelIo | undefined;
    try {
      A = KernelIo.open(a, { kind: "xdp", netns: ns });
    } catch (e) {
      console.log(`    (AF_XDP unavailable here: ${(e as Error).message}; not tested)`);
      return;
    }
    try {
      using B = KernelIo.open(b, { kind: "auto", netns: ns });
      await t.step("auto picks AF_XDP", () => {
        const i = B.info();
        assert.equal(i.kind, "xdp", i.why);
        assert.match(i.mode, /^af_xdp (drv|skb) (copy|zerocopy)/);
        assert.ok(KernelIo.link(b, ns).xdpProgId > 0, "an XDP program is attached");
      });
      await t.step("exactly N frames both ways", () => {
        const N = 2000;
        const frames = Array.from({ length: N }, (_, i) => frame(60 + (i * 131) % 1455, i));
        assertSame(pump(A!, B, frames), frames);
        const back = frames.slice(0, 300).map((f, i) => frame(f.length, 5000 + i, 3));
        assertSame(pump(B, A!, back), back);
        const sa = A!.stats(), sb = B.stats();
        assert.equal(sa.txPkts, BigInt(N));
        assert.equal(sb.rxPkts, BigInt(N));
        assert.equal(sb.rxKernelDrops, 0n);
      });
      await t.step("a second XDP user of the device gets EBUSY, auto falls back", () => {
        expectErr(() => KernelIo.open(b, { kind: "xdp", netns: ns }), "EBUSY", /XDP program/);
        using B2 = KernelIo.open(b, { kind: "auto", netns: ns });
        assert.equal(B2.info().kind, "packet");
        assert.match(B2.info().why, /XDP program/);
      });
    } finally {
      A.close();
    }
    await t.step("closing detaches the XDP program", async () => {
      const end = Date.now() + 2000;
      while (KernelIo.link(a, ns).xdpProgId && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(KernelIo.link(a, ns).xdpProgId, 0);
    });
    await t.step("every RX queue of a multi-queue device is served", () => {
      assert.equal(KernelIo.link(d, ns).rxQueues, 2);
      const N = 400;
      const frames = flowFrames(N, 64);
      using C = KernelIo.open(c, { kind: "packet", netns: ns }); // flows hash over 2 queues
      const D = KernelIo.open(d, { kind: "auto", netns: ns });
      try {
        assert.equal(D.info().kind, "xdp", D.info().why);
        assert.match(D.info().mode, /queues 0-1/);
        let sent = 0;
        const got: Uint8Array[] = [];
        const end = Date.now() + 5000;
        while (sent < N && Date.now() < end) {
          sent += C.send(frames.slice(sent, sent + 64));
          got.push(...D.recv().filter(isFlow));
        }
        got.push(...collect(D, N - got.length, 2000, isFlow));
        assert.equal(got.length, N);
        const seen = new Set(got.map((f) => new DataView(f.buffer).getUint32(42)));
        assert.equal(seen.size, N, "every frame exactly once");
      } finally {
        D.close();
      }
      // one queue only: the frames hashed to the other queue go to the host stack
      using D3 = KernelIo.open(d, { kind: "xdp", netns: ns, queue: 0 });
      assert.match(D3.info().mode, /queue 0$/);
      assert.equal(C.send(frames), N);
      const some = collect(D3, N, 1000, isFlow);
      assert.ok(some.length > 0 && some.length < N, `queue 0 alone got ${some.length} of ${N}`);
    });
  } finally {
    delNs(ns);
  }
});

/** Move frames both ways between x and y until `done()` or `ms` pass. */
async function forward(x: KernelIo, y: KernelIo, done: () => boolean, ms: number) {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) {
    let moved = 0;
    for (const [s, d] of [[x, y], [y, x]]) {
      const frames = s.recv();
      moved += frames.length;
      for (let i = 0, tries = 0; i < frames.length && tries < 1000; tries++) {
        i += d.send(frames.slice(i));
        if (i < frames.length) d.poll(POLL_OUT, 5);
      }
    }
    if (!moved) await x.wait(POLL_IN, 1);
  }
}

ktest("two namespaces talk TCP through a user-space forwarder", async (t) => {
  const cases: [string, KernelIoOptions, boolean][] = [
    ["auto (AF_XDP on veth: the kernel turns the peer's GSO off)", { kind: "auto" }, false],
    ["AF_PACKET, with the peers' segmentation offloads turned off", { kind: "packet" }, true],
  ];
  for (const [name, o, offloadsOff] of cases) {
    await t.step(name, async () => {
      const n1 = makeNs(), n2 = makeNs(), nf = makeNs();
      try {
        ip("-n", nf, "link", "add", "f1", "type", "veth", "peer", "name", "e1", "netns", n1);
        ip("-n", nf, "link", "add", "f2", "type", "veth", "peer", "name", "e2", "netns", n2);
        ip("-n", n1, "addr", "add", "10.81.0.1/24", "dev", "e1");
        ip("-n", n2, "addr", "add", "10.81.0.2/24", "dev", "e2");
        ip("-n", n1, "link", "set", "e1", "up");
        ip("-n", n2, "link", "set", "e2", "up");
        if (offloadsOff) {
          KernelIo.setOffloads("e1", false, n1);
          KernelIo.setOffloads("e2", false, n2);
        }
        using F1 = KernelIo.open("f1", { ...o, netns: nf, up: true });
        using F2 = KernelIo.open("f2", { ...o, netns: nf, up: true });
        const BYTES = 4 << 20;
        const server = nsDeno(
          n2,
          `const l = Deno.listen({ hostname: "10.81.0.2", port: 5001 });
           const c = await l.accept();
           const b = new Uint8Array(1 << 16);
           let n = 0, sum = 0;
           for (;;) {
             const k = await c.read(b);
             if (k === null) break;
             for (let i = 0; i < k; i++) sum = (sum + b[i] * ((n + i) % 251 + 1)) % 1000000007;
             n += k;
           }
           console.log(n + " " + sum);`,
        );
        const client = nsDeno(
          n1,
          `let c;
           for (let i = 0; !c && i < 100; i++) {
             try { c = await Deno.connect({ hostname: "10.81.0.2", port: 5001 }); }
             catch { await new Promise((r) => setTimeout(r, 50)); }
           }
           const b = new Uint8Array(${BYTES});
           for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) & 255;
           let w = 0;
           while (w < b.length) w += await c.write(b.subarray(w));
           c.close();`,
        );
        let finished = false;
        const outs = Promise.all([server.output(), client.output()]).finally(() => finished = true);
        await forward(F1, F2, () => finished, 20000);
        const [so, co] = await outs;
        assert.ok(co.success, `client: ${dec.decode(co.stderr)}`);
        assert.ok(so.success, `server: ${dec.decode(so.stderr)}`);
        let sum = 0;
        for (let i = 0; i < BYTES; i++) {
          sum = (sum + ((i * 7 + 3) & 255) * (i % 251 + 1)) % 1000000007;
        }
        assert.equal(dec.decode(so.stdout).trim(), `${BYTES} ${sum}`);
        const s1 = F1.stats();
        assert.equal(s1.rxTruncated, 0n);
        console.log(
          `    (${F1.info().mode}: ${s1.rxPkts} frames in, ${s1.rxCsumFixed} checksums completed)`,
        );
      } finally {
        for (const n of [n1, n2, nf]) delNs(n);
      }
    });
  }
});

ktest("interface removed or down while open: clear error, no hang", async (t) => {
  for (const kind of ["packet", "xdp", "tap"] as const) {
    await t.step(kind, () => {
      const ns = makeNs();
      const a = `${TAG}a`, b = `${TAG}b`;
      let io: KernelIo | undefined;
      try {
        if (kind !== "tap") makeVeth(ns, a, b, 2);
        try {
          io = KernelIo.open(a, { kind, netns: ns, up: true });
        } catch (e) {
          if (kind === "xdp") {
            console.log(`    (AF_XDP unavailable here: ${(e as Error).message})`);
            return;
          }
          throw e;
        }
        // down: ENETDOWN, not fatal
        ip("-n", ns, "link", "set", a, "down");
        const e1 = expectErr(() => io!.poll(POLL_IN, 1000), "ENETDOWN");
        assert.match(e1.message, new RegExp(`'${a}' is down`));
        ip("-n", ns, "link", "set", a, "up");
        assert.equal(io.poll(POLL_IN, 10), 0);
        // removed: ENODEV within a bounded time, and it sticks
        ip("-n", ns, "link", "del", a);
        const t0 = Date.now();
        expectErr(() => io!.poll(POLL_IN, 5000), "ENODEV", /was removed/);
        assert.ok(Date.now() - t0 < 1000, `noticed after ${Date.now() - t0} ms`);
        expectErr(() => io!.recvBatch(), "ENODEV");
        expectErr(() => io!.send([frame(60, 1)]), "ENODEV");
        expectErr(() => io!.check(), "ENODEV");
      } finally {
        io?.close();
        delNs(ns);
      }
    });
  }
  await t.step("the namespace deleted under an open handle", () => {
    const ns = makeNs();
    const a = `${TAG}a`, b = `${TAG}b`;
    makeVeth(ns, a, b);
    using io = KernelIo.open(a, { kind: "packet", netns: ns });
    delNs(ns); // the name goes; the namespace lives on while we hold a socket in it
    assert.equal(io.poll(POLL_IN, 10), 0);
    assert.equal(io.send([frame(60, 1)]), 1);
  });
});

ktest("batch rates on a veth pair (informational)", () => {
  const ns = makeNs();
  const a = `${TAG}a`, b = `${TAG}b`;
  try {
    makeVeth(ns, a, b, 1);
    const lines: string[] = [];
    const cases: [string, KernelIoOptions][] = [
      ["af_packet v2", { kind: "packet" }],
      ["af_packet v3", { kind: "packet", rxV3: true }],
      ["af_xdp", { kind: "xdp" }],
    ];
    for (const [name, o] of cases) {
      let A: KernelIo, B: KernelIo;
      try {
        A = KernelIo.open(a, { ...o, netns: ns, batch: 512 });
        B = KernelIo.open(b, { ...o, netns: ns, batch: 512 });
      } catch (e) {
        lines.push(`${name}: unavailable (${(e as Error).message})`);
        continue;
      }
      try {
        const f = frame(60, 0);
        const batch = Array.from({ length: 256 }, () => f);
        let rx = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < 500) {
          A.send(batch);
          rx += B.recvBatch();
        }
        const dt = (performance.now() - t0) / 1000;
        rx += collect(B, 1 << 30, 200).length;
        const s = B.stats();
        lines.push(
          `${name}: ${(rx / dt / 1e6).toFixed(3)} Mpps received (60 B, one thread both ends), ` +
            `avg rx batch ${(Number(s.rxPkts) / Math.max(1, Number(s.rxBatches))).toFixed(1)}`,
        );
      } finally {
        A.close();
        B.close();
      }
    }
    console.log(lines.map((l) => `    ${l}`).join("\n"));
  } finally {
    delNs(ns);
  }
});

Deno.test("kernel_io: buffer constants match the switch", () => {
  assert.equal(BUF_SIZE, 2048);
  assert.equal(MOREFRAG, 0x20);
});
