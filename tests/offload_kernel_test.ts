// Kernel paths that keep offloads (issue 10): real kernel traffic between two network
// namespaces through vale0, carried as 64 KiB GSO super-frames with partial checksums
// in virtio-net headers:
//
//   (a) TAPs with headers: `valeX:tap:NAME` attachments created inside each namespace
//       (IFF_VNET_HDR, TUNSETOFFLOAD)
//   (b) veth attachments: `vale-ctl -a vale0:VETH`, which picks AF_PACKET with the header
//   (c) one side with a header (veth, AF_PACKET) and one without (`--vnet-hdr 0`): the
//       switch segments TCP and completes checksums toward the port without one
//
// Each case: ping with 8000- and 60000-byte payloads over MTU 1500 links (IP
// fragments), a 100 MB TCP transfer with exact byte count and content, UDP datagrams
// with exact counts (1472 bytes, and 8000 bytes as IP fragments), and the proof that
// super-frames crossed: the sending port's average frame is larger than any MTU-sized
// frame (and, for (c), the receiving port got more, MTU-sized frames). Also: a tagged
// frame across (b); a `tap:` port opened with a header passes frames with it and counts
// one whose header the kernel refuses.
//
// Namespaces, veths and TAPs are named ok<pid>…, the run dir is private; all of it is
// removed in `finally`. Without root the cases are ignored with the reason in their names.

import assert from "node:assert/strict";
import { netSkipReason, testGroup } from "./helpers/machine.ts";
import { ip, nsPing, nsTransfer, type Out, requirePort, sh, valeCtl } from "./helpers/nslab.ts";
import { attachInterface, detachInterface, listAttachments } from "../lib/attach/attach.ts";
import { KernelIo, TunOffloads } from "../lib/backends/kernel_io.ts";
import type { KernelPort } from "../lib/backends/kernel_port.ts";
import { openPort } from "../lib/open.ts";
import type { PortInfo } from "../lib/switch/control.ts";

const TAG = `ok${Deno.pid}`;

const otest = testGroup("offload_kernel", netSkipReason());

/** A namespace's side of the lab: how it reaches vale0. */
type Side = "tap" | "veth" | "veth-nohdr";

/** Namespaces A (10.98.0.1) and B (10.98.0.2) on vale0, each through a TAP or a veth. */
class Lab implements AsyncDisposable {
  readonly ns = [`${TAG}A`, `${TAG}B`];
  readonly ips = ["10.98.0.1", "10.98.0.2"];
  /** The switch port (and root-side interface) of each namespace. */
  readonly ports = ["", ""];
  /** What `vale-ctl -a` printed for each veth side. */
  readonly said = ["", ""];
  runDir = "";

  async setup(sides: [Side, Side]): Promise<this> {
    this.runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-okt-" });
    for (const [i, ns] of this.ns.entries()) {
      await ip("netns", "add", ns);
      await ip("-n", ns, "link", "set", "lo", "up");
      const dev = await this.#join(i, sides[i]);
      await ip("-n", ns, "addr", "add", `${this.ips[i]}/24`, "dev", dev);
      await ip("-n", ns, "link", "set", dev, "up");
    }
    return this;
  }

  /** Joins namespace i to vale0; returns its interface there. */
  async #join(i: number, side: Side): Promise<string> {
    const ns = this.ns[i];
    if (side === "tap") {
      // the fd side is the forwarder's (header, offloads), the interface is in the namespace
      const name = `${TAG}t${i}`;
      this.ports[i] = name;
      await attachInterface(`vale0:tap:${name}`, { runDir: this.runDir, netns: ns });
      return name;
    }
    const root = `${TAG}r${i}`;
    this.ports[i] = root;
    await ip("link", "add", root, "type", "veth", "peer", "name", "nsveth", "netns", ns);
    await ip("link", "set", root, "up");
    const r = await this.ctl(
      "-a",
      `vale0:${root}`,
      ...(side === "veth-nohdr" ? ["--vnet-hdr", "0"] : []),
    );
    assert.ok(r.ok, r.out + r.err);
    this.said[i] = r.out;
    return "nsveth"; // inside the test's own namespace
  }

  ctl(...args: string[]): Promise<Out> {
    return valeCtl(this.runDir, ...args);
  }

  port(i: number): PortInfo {
    return requirePort(this.runDir, "vale0", this.ports[i]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.runDir) {
      for (const a of listAttachments(undefined, { runDir: this.runDir })) {
        await detachInterface(a.name, { runDir: this.runDir }).catch(() => {});
      }
    }
    for (const ns of this.ns) await sh("ip", ["netns", "del", ns]);
    for (const i of [0, 1]) {
      for (const l of [`${TAG}r${i}`, `${TAG}t${i}`]) await sh("ip", ["link", "del", l]);
    }
    if (this.runDir) await Deno.remove(this.runDir, { recursive: true }).catch(() => {});
  }
}

const TCP_BYTES = 100 * 1024 * 1024;

/** The traffic every case runs, A -> B and back; returns nothing, asserts everything. */
async function traffic(lab: Lab): Promise<void> {
  const [a, b] = lab.ips;
  // large pings: IP fragments of an MTU 1500 link, in both directions
  for (const size of [8000, 60000]) {
    assert.equal(await nsPing(lab.ns[0], b, size), "0", `ping -s ${size} A -> B`);
    assert.equal(await nsPing(lab.ns[1], a, size), "0", `ping -s ${size} B -> A`);
  }
  // TCP: exact byte count and content
  const tcp = await nsTransfer(
    lab.ns[1],
    lab.ns[0],
    ["tcp-sink", b, "5401"],
    ["tcp-source", b, "5401", `${TCP_BYTES}`],
    60000,
  );
  assert.equal(tcp.bad, -1, `TCP byte ${tcp.bad} differs`);
  assert.equal(tcp.n, TCP_BYTES, "every TCP byte arrived, no more");
  // UDP: exact datagram counts, MTU-sized and fragmented
  for (const [n, size] of [[2000, 1472], [300, 8000]]) {
    const u = await nsTransfer(
      lab.ns[1],
      lab.ns[0],
      ["udp-sink", b, "5402", `${n}`, `${size}`, "3000"],
      ["udp-source", b, "5402", `${n}`, `${size}`],
      30000,
    );
    assert.deepEqual(u, { got: n, distinct: n, bad: 0 }, `UDP ${n} x ${size} B`);
  }
}

/** Average bytes per packet a port sent into the switch. */
function avgTx(p: PortInfo): number {
  return p.counters.tx_bytes / Math.max(1, p.counters.tx_packets);
}

otest("(a) TAPs with virtio-net headers: super-frames between two namespaces", async () => {
  await using lab = await new Lab().setup(["tap", "tap"]);
  for (const a of listAttachments("vale0", { runDir: lab.runDir })) {
    assert.match(a.mode ?? "", /^tap vnet_hdr 12 csum tso4 tso6/, a.mode);
    assert.equal(a.vnetHdr, 12);
  }
  await traffic(lab);
  const pa = lab.port(0), pb = lab.port(1);
  assert.equal(pa.vnet_hdr_len, 12);
  assert.ok(avgTx(pa) > 4000, `A's TAP handed over super-frames: ${avgTx(pa).toFixed(0)} B avg`);
  assert.ok(pb.counters.rx_bytes >= TCP_BYTES, `B got ${pb.counters.rx_bytes} bytes`);
  for (const p of [pa, pb]) {
    assert.equal(p.counters.drops.bad_vnet, 0);
    assert.equal(p.counters.drops.bad_slot, 0);
  }
});

otest("(b) veths attached by vale-ctl -a: AF_PACKET with headers, super-frames", async () => {
  await using lab = await new Lab().setup(["veth", "veth"]);
  for (const s of lab.said) {
    assert.match(
      s,
      /attached via af_packet vnet_hdr 12 mmsg \(veth: af_packet with virtio-net header keeps GSO/,
    );
  }
  const lv = await lab.ctl("-l", "-v");
  assert.match(lv.out, /info:"[^"]*af_packet vnet_hdr 12[^"]*" vnet_hdr:12 mtu:1514/, lv.out);
  await traffic(lab);
  const pa = lab.port(0), pb = lab.port(1);
  assert.ok(avgTx(pa) > 4000, `A's veth handed over super-frames: ${avgTx(pa).toFixed(0)} B avg`);
  assert.ok(pb.counters.rx_bytes >= TCP_BYTES, `B got ${pb.counters.rx_bytes} bytes`);
  const st = listAttachments("vale0", { runDir: lab.runDir });
  for (const a of st) assert.equal(a.counters?.kernel_rx_truncated ?? 0, 0, a.name);
  for (const p of [pa, pb]) assert.equal(p.counters.drops.bad_vnet, 0);

  // an 802.1Q-tagged frame: the kernel hands the tag to AF_PACKET as metadata, the
  // attachment puts it back into the frame; B receives exactly what A sent
  using sa = KernelIo.open("nsveth", { kind: "packet", netns: lab.ns[0] });
  using sb = KernelIo.open("nsveth", { kind: "packet", netns: lab.ns[1] });
  const tagged = new Uint8Array(300);
  tagged.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0x0a, 0x01]);
  tagged.set([0x81, 0x00, 0x20, 0x07, 0x88, 0xb5], 12); // VLAN 7, priority 1, ethertype 0x88b5
  for (let i = 18; i < tagged.length; i++) tagged[i] = i & 255;
  let seen: Uint8Array | undefined;
  for (let i = 0; i < 20 && !seen; i++) {
    sa.send([tagged]);
    const end = Date.now() + 200;
    while (!seen && Date.now() < end) {
      await sb.wait(1, 50);
      seen = sb.recv().find((f) => f[14] === 0x20 && f[15] === 0x07);
    }
  }
  assert.ok(seen, "the tagged frame reached B");
  assert.deepEqual([...seen], [...tagged], "tag and payload as sent");
});

otest(
  "(c) a veth with a header to one without: the switch segments TCP to the MTU",
  async () => {
    await using lab = await new Lab().setup(["veth", "veth-nohdr"]);
    assert.match(lab.said[0], /af_packet vnet_hdr 12/);
    assert.doesNotMatch(lab.said[1], /vnet_hdr/);
    await traffic(lab);
    const pa = lab.port(0), pb = lab.port(1);
    assert.equal(pb.vnet_hdr_len, 0);
    assert.ok(avgTx(pa) > 4000, `A sent super-frames: ${avgTx(pa).toFixed(0)} B avg`);
    const avgRx = pb.counters.rx_bytes / Math.max(1, pb.counters.rx_packets);
    assert.ok(avgRx <= 1514, `B got MTU-sized frames: ${avgRx.toFixed(0)} B avg`);
    assert.ok(pb.counters.rx_packets > pa.counters.tx_packets, "segmented: more frames out");
    assert.equal(pa.counters.drops.too_big, 0);
  },
);

otest(
  "the io layer: TAP offloads as asked and shown, headers refused where they cannot be",
  async () => {
    const ns = `${TAG}I`;
    await ip("netns", "add", ns);
    try {
      const tap = (o: { vnetHdr?: 10 | 12; offloads?: number }) =>
        KernelIo.open(`${TAG}i`, { kind: "tap", netns: ns, ...o });
      {
        using t = tap({ vnetHdr: 10, offloads: TunOffloads.csum });
        assert.equal(t.info().vnetHdrLen, 10);
        assert.equal(t.info().offloads, TunOffloads.csum);
        assert.equal(t.info().mode, "tap vnet_hdr 10 csum");
      }
      {
        using t = tap({ vnetHdr: 12, offloads: 0 });
        assert.equal(t.info().offloads, 0);
        assert.equal(t.info().mode, "tap vnet_hdr 12 no-offloads");
      }
      {
        using t = tap({ vnetHdr: 12 });
        const all = TunOffloads.csum | TunOffloads.tso4 | TunOffloads.tso6;
        assert.equal(t.info().offloads & all, all, "checksum and TSO by default");
      }
      assert.throws(() => tap({ vnetHdr: 11 as 10 }), /header length 11/);
      assert.throws(
        () => KernelIo.open("lo", { kind: "xdp", vnetHdr: 12 }),
        /af_xdp frames carry no virtio-net header/,
      );
    } finally {
      await sh("ip", ["netns", "del", ns]);
    }
  },
);

otest(
  "a tap: port opened with a header: frames pass with it, one the kernel refuses is counted",
  async () => {
    const ns = `${TAG}P`, tap = `${TAG}p`;
    const runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-okt-" });
    await ip("netns", "add", ns);
    try {
      using port = openPort(`tap:${tap}`, {
        runDir,
        vnetHdrLen: 12,
        io: { netns: ns },
      }) as KernelPort;
      assert.equal(port.vnetHdrLen, 12);
      assert.equal(port.kernel.vnetHdrLen, 12);
      assert.match(port.kernel.mode, /^tap vnet_hdr 12 csum tso4 tso6/);
      using cap = KernelIo.open(tap, { kind: "packet", netns: ns });
      // a 12-byte header (gso_type at byte 1), then a broadcast frame of ethertype 0x88b5
      const frame = (gsoType: number, mark: number) => {
        const f = new Uint8Array(12 + 14 + 100);
        f[1] = gsoType;
        f.fill(0xff, 12, 18);
        f.set([0x02, 0, 0, 0, 0x0c, 0x01, 0x88, 0xb5], 18);
        f.fill(mark, 26);
        return f;
      };
      port.send(frame(0, 1));
      port.send(frame(7, 2)); // no such GSO type: the kernel refuses it
      port.send(frame(0, 3));
      port.txsync();
      const got: Uint8Array[] = [];
      const end = Date.now() + 5000;
      while (got.length < 2 && Date.now() < end) {
        await cap.wait(1, 50);
        got.push(...cap.recv().filter((f) => f[12] === 0x88 && f[13] === 0xb5));
      }
      assert.deepEqual(got.map((f) => [...f]), [[...frame(0, 1).subarray(12)], [
        ...frame(0, 3).subarray(12),
      ]], "the two good frames, without their header");
      const end2 = Date.now() + 3000;
      while (port.kernelStats().txErrors < 1n && Date.now() < end2) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(port.kernelStats().txErrors, 1n, "the refused one is counted");
    } finally {
      await sh("ip", ["netns", "del", ns]);
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
    }
  },
);
