// The kernel fast path of attachments (lib/backends/kfast.ts, c-src/kfast/): namespaces on
// veths whose root ends are attached to vale0 by `vale-ctl -a`, as the README's container
// recipe does. Once the switch has learned where a unicast destination is, the kernel hands
// frames from veth to veth (a tc program) and the switch's counters still count every frame
// once: the tests compare them with the kernel's own interface counters, move 100 MB of TCP
// and 2000 UDP datagrams exactly (no loss, no duplicate), and check what must take the
// normal path: a port with a monitor (the monitor sees every frame), a MAC that moves to
// another port, `--no-kfast`. The program goes with its forwarder, also after SIGKILL.
//
// Namespaces and veths are named kf<pid>…, the run dir is private; all of it is removed in
// `finally`. Without root (or without tcx, Linux >= 6.6) the cases are ignored with the reason
// in their names.

import assert from "node:assert/strict";
import { netSkipReason, testGroup } from "./helpers/machine.ts";
import { ip, nsPing, nsTransfer, type Out, requirePort, sh, valeCtl } from "./helpers/nslab.ts";
import { type Attachment, detachInterface, listAttachments } from "../lib/attach/attach.ts";
import { KernelFastPath } from "../lib/backends/kfast.ts";
import { buildProg } from "./helpers/cprog.ts";
import { readUntil, until } from "./helpers/tools.ts";
import { openPort } from "../lib/open.ts";
import type { PortInfo } from "../lib/switch/control.ts";

const TAG = `kf${Deno.pid}`;

function kernelRelease(): number[] {
  return Deno.osRelease().split(/[.-]/).slice(0, 2).map(Number);
}
const [maj, min] = kernelRelease();
const ktest = testGroup(
  "kfast",
  netSkipReason() ||
    (maj < 6 || (maj === 6 && min < 6)
      ? `needs Linux >= 6.6 for tcx (this is ${Deno.osRelease()})`
      : ""),
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Namespaces on veths, root ends attached to vale0 (IPv6 off: no traffic of their own). */
class Lab implements AsyncDisposable {
  readonly ns: string[] = [];
  readonly ips: string[] = [];
  readonly ports: string[] = [];
  runDir = "";

  async setup(n: number, extra: string[] = []): Promise<this> {
    this.runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-kft-" });
    for (let i = 0; i < n; i++) await this.add(extra);
    return this;
  }

  /** One more namespace on vale0 (`extra`: more vale-ctl -a options). */
  async add(extra: string[] = []): Promise<number> {
    const i = this.ns.length;
    const ns = `${TAG}${"ABCD"[i]}`, root = `${TAG}r${i}`, addr = `10.99.0.${i + 1}`;
    this.ns.push(ns);
    this.ips.push(addr);
    this.ports.push(root);
    await ip("netns", "add", ns);
    for (const k of ["all", "default"]) {
      await sh("ip", ["netns", "exec", ns, "sysctl", "-qw", `net.ipv6.conf.${k}.disable_ipv6=1`]);
    }
    await ip("-n", ns, "link", "set", "lo", "up");
    await ip("link", "add", root, "type", "veth", "peer", "name", "nsveth", "netns", ns);
    // the root end is the switch's: no IPv6 traffic of the root namespace's own on it
    await sh("sysctl", ["-qw", `net.ipv6.conf.${root}.disable_ipv6=1`]);
    await ip("link", "set", root, "up");
    await ip("-n", ns, "addr", "add", `${addr}/24`, "dev", "nsveth");
    await ip("-n", ns, "link", "set", "nsveth", "up");
    const r = await this.ctl("-a", `vale0:${root}`, ...extra);
    assert.ok(r.ok, r.out + r.err);
    return i;
  }

  ctl(...args: string[]): Promise<Out> {
    return valeCtl(this.runDir, ...args);
  }

  port(i: number): PortInfo {
    return requirePort(this.runDir, "vale0", this.ports[i]);
  }

  attachment(i: number): Attachment {
    const a = listAttachments("vale0", { runDir: this.runDir }).find((x) =>
      x.port === this.ports[i]
    );
    assert.ok(a, `attachment of ${this.ports[i]}`);
    return a;
  }

  async ifindex(i: number): Promise<number> {
    return JSON.parse(await ip("-j", "link", "show", this.ports[i]))[0].ifindex;
  }

  /** The kernel's counters of namespace i's interface. */
  async kernel(i: number): Promise<{ tx: number; rx: number }> {
    const j = JSON.parse(await ip("-n", this.ns[i], "-s", "-j", "link", "show", "nsveth"))[0];
    return { tx: j.stats64.tx.packets, rx: j.stats64.rx.packets };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.runDir) {
      for (const a of listAttachments(undefined, { runDir: this.runDir })) {
        await detachInterface(a.name, { runDir: this.runDir }).catch(() => {});
      }
    }
    for (const ns of this.ns) await sh("ip", ["netns", "del", ns]);
    for (const p of this.ports) await sh("ip", ["link", "del", p]);
    if (this.runDir) await Deno.remove(this.runDir, { recursive: true }).catch(() => {});
  }
}

/** Waits until the switch's counters of every port equal the kernel's of its namespace. */
async function countersAgree(lab: Lab): Promise<void> {
  let last = "";
  const end = Date.now() + 5000;
  for (;;) {
    const rows = [];
    for (let i = 0; i < lab.ns.length; i++) {
      const k = await lab.kernel(i), c = lab.port(i).counters;
      rows.push({ i, kTx: k.tx, sTx: c.tx_packets, kRx: k.rx, sRx: c.rx_packets });
    }
    last = JSON.stringify(rows);
    if (rows.every((r) => r.kTx === r.sTx && r.kRx === r.sRx)) return;
    if (Date.now() > end) {
      assert.fail(`switch counters (sTx, sRx) != the namespaces' kernel counters: ${last}`);
    }
    await sleep(100);
  }
}

const TCP_BYTES = 100 * 1024 * 1024;

ktest(
  "veth to veth: learned unicast frames take the kernel's short cut, counted exactly",
  async () => {
    await using lab = await new Lab().setup(2);
    for (const i of [0, 1]) {
      const a = lab.attachment(i);
      assert.deepEqual(a.kfast?.on, true, JSON.stringify(a.kfast));
      assert.ok(KernelFastPath.attached(await lab.ifindex(i)), "the program is at the ingress");
    }
    const [a, b] = lab.ips;
    assert.equal(await nsPing(lab.ns[0], b), "0", "ping A -> B");
    const tcp = await nsTransfer(
      lab.ns[1],
      lab.ns[0],
      ["tcp-sink", b, "5501"],
      ["tcp-source", b, "5501", `${TCP_BYTES}`],
      90000,
    );
    assert.deepEqual(tcp, { n: TCP_BYTES, bad: -1 }, "every TCP byte, once, in order");
    const u = await nsTransfer(
      lab.ns[0],
      lab.ns[1],
      ["udp-sink", a, "5502", "2000", "1472", "3000"],
      ["udp-source", a, "5502", "2000", "1472"],
      30000,
    );
    assert.deepEqual(u, { got: 2000, distinct: 2000, bad: 0 }, "UDP B -> A: no loss, no duplicate");
    await countersAgree(lab);
    // most of it went the short way: the forwarder's reports say how much
    const fast = await until(
      () => {
        const k = lab.attachment(0).kfast;
        return (k?.fastPkts ?? 0) > 0 && k;
      },
      8000,
      "A's fast-path count in its report",
    );
    const tx = lab.port(0).counters.tx_packets;
    assert.ok(fast.fastPkts! > tx / 2, `fast ${fast.fastPkts} of ${tx} frames A sent`);
    assert.equal(fast.dests, 1, "one MAC of another port to redirect to");
    const l = await lab.ctl("-l", "-v");
    assert.match(l.out, new RegExp(`vale0:${lab.ports[0]} .* kfast`), l.out);
  },
);

ktest("a monitor on a port sends its frames the normal way: the monitor sees each", async () => {
  await using lab = await new Lab().setup(2);
  const b = lab.ips[1];
  assert.equal(await nsPing(lab.ns[0], b), "0", "ping A -> B (learning)");
  const mon = openPort(`vale0:${lab.ports[1]}/r`, { runDir: lab.runDir });
  try {
    // B's own fast path pauses, and no other port redirects to B any more
    await until(() => lab.attachment(1).kfast?.active === false, 5000, "B's fast path paused");
    assert.match(lab.attachment(1).kfast?.reason ?? "", /monitor/);
    assert.equal(await nsPing(lab.ns[0], b, 56, { count: 5 }), "0", "ping A -> B, monitored");
    // B's port received 5 echo requests: the monitor has a copy of each
    let requests = 0;
    for (const f of mon.tryReceive()) {
      const e = f.length - 98; // the frame (14 + 20 + 8 + 56 bytes) after a header, if any
      // IPv4 (0x0800), ICMP (1), echo request (8)
      if (e >= 0 && f[e + 12] === 8 && f[e + 13] === 0 && f[e + 23] === 1 && f[e + 34] === 8) {
        requests++;
      }
    }
    assert.equal(requests, 5, "the monitor saw every echo request to B");
  } finally {
    mon.close();
  }
  await until(() => lab.attachment(1).kfast?.active === true, 5000, "B's fast path back");
  await countersAgree(lab);
});

ktest("--no-kfast: every frame through the forwarder, still exact", async () => {
  await using lab = await new Lab().setup(2, ["--no-kfast"]);
  for (const i of [0, 1]) {
    const k = lab.attachment(i).kfast;
    assert.deepEqual(k, { on: false, reason: "turned off (--no-kfast)" });
    assert.equal(KernelFastPath.attached(await lab.ifindex(i)), false, "no program");
  }
  const b = lab.ips[1];
  const tcp = await nsTransfer(
    lab.ns[1],
    lab.ns[0],
    ["tcp-sink", b, "5503"],
    ["tcp-source", b, "5503", `${10 * 1024 * 1024}`],
    60000,
  );
  assert.deepEqual(tcp, { n: 10 * 1024 * 1024, bad: -1 });
  await countersAgree(lab);
});

ktest("the program goes with its forwarder (SIGKILL) and comes back with it", async () => {
  await using lab = await new Lab().setup(2);
  const ifx = await lab.ifindex(0);
  assert.ok(KernelFastPath.attached(ifx));
  const a = lab.attachment(0);
  assert.ok(a.pid > 0 && a.supervisorPid > 0, JSON.stringify(a));
  // nothing restarts it: the kernel detaches the program when the process is gone
  Deno.kill(a.supervisorPid, "SIGKILL");
  Deno.kill(a.pid, "SIGKILL");
  await until(() => !KernelFastPath.attached(ifx), 5000, "the program detached");
  assert.equal(lab.attachment(0).status, "dead");
  // -a restarts it: the program is back and traffic takes it again
  const r = await lab.ctl("-a", `vale0:${lab.ports[0]}`);
  assert.ok(r.ok, r.out + r.err);
  assert.ok(KernelFastPath.attached(ifx), "the program is back");
  assert.equal(await nsPing(lab.ns[0], lab.ips[1], 56, { count: 5 }), "0", "ping A -> B");
  // detached: gone for good
  const d = await lab.ctl("-d", `vale0:${lab.ports[0]}`);
  assert.ok(d.ok, d.out + d.err);
  assert.equal(KernelFastPath.attached(ifx), false, "no program after -d");
});

ktest("a MAC that moves to another port is followed", async () => {
  await using lab = await new Lab().setup(3);
  const b = lab.ips[1];
  // A talks to B: both MACs learned, the fast path carries A <-> B
  assert.equal(await nsPing(lab.ns[0], b, 56, { count: 3 }), "0", "ping A -> B");
  await until(() => (lab.attachment(1).kfast?.dests ?? 0) >= 1, 8000, "B redirects to A");
  // A's MAC moves to C: A goes down, C takes its MAC and A's address
  const macA = JSON.parse(await ip("-n", lab.ns[0], "-j", "link", "show", "nsveth"))[0].address;
  await ip("-n", lab.ns[0], "link", "set", "nsveth", "down");
  await ip("-n", lab.ns[2], "link", "set", "nsveth", "down");
  await ip("-n", lab.ns[2], "link", "set", "nsveth", "address", macA);
  await ip("-n", lab.ns[2], "addr", "add", `${lab.ips[0]}/24`, "dev", "nsveth");
  await ip("-n", lab.ns[2], "link", "set", "nsveth", "up");
  // C's frames teach the switch; B's answers follow the MAC to C, not to A's port
  const loss = await nsPing(lab.ns[2], b, 56, { count: 5, interval: "0.3" });
  assert.ok(Number(loss) <= 20, `C -> B with A's MAC: ${loss}% lost`);
  const macs = JSON.parse((await lab.ctl("--macs", "vale0", "--json")).out);
  const e = (macs.macs ?? macs).find((m: { mac: string }) => m.mac === macA);
  assert.equal(e?.port, lab.port(2).index, `A's MAC is on C's port: ${JSON.stringify(e)}`);
});

ktest("a client that claims another interface in its port entry is not believed", async () => {
  await using lab = await new Lab().setup(1);
  // the decoy: a veth pair vale never attached (its counters must stay at zero)
  const d0 = `${TAG}d0`, d1 = `${TAG}d1`;
  try {
    await ip("link", "add", d0, "type", "veth", "peer", "name", d1);
    for (const d of [d0, d1]) {
      await sh("sysctl", ["-qw", `net.ipv6.conf.${d}.disable_ipv6=1`]);
      await ip("link", "set", d, "up");
    }
    const decoy = JSON.parse(await ip("-j", "link", "show", d0))[0].ifindex;
    const lureMac = "02:00:00:00:00:77";
    const bin = await buildProg("kfast_lure");
    const lure = new Deno.Command(bin, {
      args: ["vale0", "lure", `${decoy}`, lureMac, "20000"],
      env: { VALE_RUN_DIR: lab.runDir },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = lure.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = await readUntil(out, "", "ready");
    assert.match(text, /ready/, "the lure started");
    await sleep(200); // a few of the forwarder's synchronisations
    await ip("-n", lab.ns[0], "neigh", "add", "10.99.0.77", "lladdr", lureMac, "dev", "nsveth");
    await nsPing(lab.ns[0], "10.99.0.77", 56, { count: 5, wait: "1" }); // no answer: a lure
    await sleep(300);
    await lure.stdin.close();
    while (!/rx \d+/.test(text)) {
      const r = await out.read();
      if (r.done) break;
      text += r.value;
    }
    out.releaseLock();
    await lure.status;
    assert.equal(/rx (\d+)/.exec(text)?.[1], "5", `the 5 echo requests reached the lure: ${text}`);
    for (const d of [d0, d1]) {
      const s = JSON.parse(await ip("-s", "-j", "link", "show", d))[0].stats64;
      assert.deepEqual([s.tx.packets, s.rx.packets], [0, 0], `${d} saw nothing`);
    }
    assert.equal(lab.attachment(0).kfast?.dests ?? 0, 0, "A redirects to nobody");
  } finally {
    await sh("ip", ["link", "del", d0]);
  }
});
