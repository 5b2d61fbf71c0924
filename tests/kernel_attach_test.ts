// Kernel interfaces on a switch: `vale-ctl -a/-h/-d` (lib/attach/,
// lib/attach/vale-fwd.ts, c-src/fwd/fwd.c) and kernel ports opened by name
// (lib/backends/). Real traffic from the kernel: two network namespaces
// joined through vale0, one by a veth pair attached with `vale-ctl -a`, one
// by a TAP; ping, ARP, an iperf3 TCP transfer, detach under load, SIGKILL of
// the forwarder, removal of the veth, link down/up, MTU 9000 with MOREFRAG,
// missing privileges.
//
// Every case makes its own namespaces, veths and TAPs named ka<pid>…, a
// private VALE_RUN_DIR under /dev/shm, and removes all of it in `finally`.
// Nothing else is touched. Loops are bounded. Without root the cases are
// registered as ignored with the reason in their names.

import assert from "node:assert/strict";
import { haveCmd, netSkipReason, testGroup } from "./helpers/machine.ts";
import { ip, nsPingRun, type Out, sh } from "./helpers/nslab.ts";
import { until } from "./helpers/tools.ts";
import { procsMentioning } from "./helpers/procs.ts";
import {
  attachInterface,
  type Attachment,
  detachInterface,
  listAttachments,
} from "../lib/attach/attach.ts";
import type { KernelPort } from "../lib/backends/kernel_port.ts";
import { KernelIo } from "../lib/backends/kernel_io.ts";
import { openPort } from "../lib/open.ts";
import { switchInfo } from "../lib/switch/control.ts";
import { Topology } from "../lib/topo/topology.ts";

const TAG = `ka${Deno.pid}`;
const ROOT = new URL("..", import.meta.url).pathname;

// ---------------------------------------------------------------- privileges

const haveIperf = haveCmd("iperf3", ["--version"]);
const skipReason = netSkipReason();
const ktest = testGroup("kernel_attach", skipReason);

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** vale-ctl as a user runs it (its own process), in the lab's run dir. */
function valeCtl(runDir: string, ...args: string[]): Promise<Out> {
  return sh(
    Deno.execPath(),
    ["run", "-A", "--no-lock", "--config", `${ROOT}deno.json`, `${ROOT}cli/vale-ctl.ts`, ...args],
    60000,
    { VALE_RUN_DIR: runDir },
  );
}

/** Processes whose command line mentions `s` (our forwarders carry the run dir). */
const procsWith = (s: string): number[] => procsMentioning(s).map((p) => p.pid);

function ping(ns: string, dst: string, count = 3, extra: string[] = []): Promise<Out> {
  return nsPingRun(ns, dst, { count, wait: "1", extra });
}
const lossOf = (o: Out) => Number(/(\d+(?:\.\d+)?)% packet loss/.exec(o.out)?.[1] ?? 100);

/**
 * Two namespaces: A reaches vale0 through a veth pair (A's end `a` in A,
 * 10.99.0.1, the root end `r` attached), B through a TAP `t` (10.99.0.2)
 * that the switch's forwarder creates inside B.
 */
class Lab implements AsyncDisposable {
  readonly nsA = `${TAG}A`;
  readonly nsB = `${TAG}B`;
  readonly a = `${TAG}a`; // in A
  readonly r = `${TAG}r`; // root end, attached to vale0
  readonly t = `${TAG}t`; // TAP in B
  readonly ipA = "10.99.0.1";
  readonly ipB = "10.99.0.2";
  runDir = "";

  async setup(opts: { tap?: boolean } = {}): Promise<this> {
    this.runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-kat-" });
    for (const ns of [this.nsA, this.nsB]) {
      await ip("netns", "add", ns);
      await sh("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
      await sh("ip", [
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        "net.ipv6.conf.default.disable_ipv6=1",
      ]);
      await ip("-n", ns, "link", "set", "lo", "up");
    }
    await ip("link", "add", this.r, "type", "veth", "peer", "name", this.a);
    await ip("link", "set", this.a, "netns", this.nsA);
    await ip("-n", this.nsA, "addr", "add", `${this.ipA}/24`, "dev", this.a);
    await ip("-n", this.nsA, "link", "set", this.a, "up");
    await ip("link", "set", this.r, "up");
    if (opts.tap !== false) await this.attachTap();
    return this;
  }

  /** The TAP side: created in B by the forwarder (library API, valeX:tap:NAME). */
  async attachTap(): Promise<Attachment> {
    const a = await attachInterface(`vale0:tap:${this.t}`, {
      runDir: this.runDir,
      netns: this.nsB,
    });
    await ip("-n", this.nsB, "addr", "add", `${this.ipB}/24`, "dev", this.t);
    return a;
  }

  ctl(...args: string[]): Promise<Out> {
    return valeCtl(this.runDir, ...args);
  }

  attachments(): Attachment[] {
    return listAttachments(undefined, { runDir: this.runDir });
  }
  att(port: string): Attachment | undefined {
    return this.attachments().find((x) => x.port === port);
  }
  ports() {
    try {
      return switchInfo("vale0", { runDir: this.runDir }).ports;
    } catch {
      return [];
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.runDir) {
      for (const a of this.attachments()) {
        await detachInterface(a.name, { runDir: this.runDir }).catch(() => {});
      }
      for (const pid of procsWith(this.runDir)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
    for (const ns of [this.nsA, this.nsB]) await sh("ip", ["netns", "del", ns]);
    await sh("ip", ["link", "del", this.r]);
    for (const l of [this.t, `${this.r}-h`]) await sh("ip", ["link", "del", l]);
    if (this.runDir) await Deno.remove(this.runDir, { recursive: true }).catch(() => {});
  }
}

async function macOf(ns: string | null, dev: string): Promise<string> {
  const o = ns ? await ip("-n", ns, "link", "show", dev) : await ip("link", "show", dev);
  return /link\/ether ([0-9a-f:]{17})/.exec(o)![1];
}

// ---------------------------------------------------------------- tests

ktest("ping between two namespaces: veth (vale-ctl -a) and TAP, ARP and MAC table", async () => {
  await using lab = await new Lab().setup();
  const att = await lab.ctl("-a", `vale0:${lab.r}`);
  assert.ok(att.ok, att.err);
  // the method is chosen automatically and shown
  assert.match(att.out, new RegExp(`vale0:${lab.r}: ${lab.r} attached via (af_xdp|af_packet)`));
  const p = await ping(lab.nsA, lab.ipB, 5);
  assert.equal(lossOf(p), 0, p.out + p.err);
  const back = await ping(lab.nsB, lab.ipA, 3);
  assert.equal(lossOf(back), 0, back.out + back.err);

  // ARP learned on both sides, with the real MACs
  const macA = await macOf(lab.nsA, lab.a), macB = await macOf(lab.nsB, lab.t);
  assert.match(await ip("-n", lab.nsA, "neigh", "show", lab.ipB), new RegExp(macB));
  assert.match(await ip("-n", lab.nsB, "neigh", "show", lab.ipA), new RegExp(macA));
  // the switch learned both hosts, each on its port
  const info = switchInfo("vale0", { runDir: lab.runDir });
  const portOf = (mac: string) =>
    info.ports.find((x) => x.index === info.macs.find((m) => m.mac === mac)?.port)?.name;
  assert.equal(portOf(macA), lab.r, JSON.stringify(info.macs));
  assert.equal(portOf(macB), lab.t, JSON.stringify(info.macs));
  const macs = await lab.ctl("--macs", "vale0");
  assert.ok(macs.out.includes(macA) && macs.out.includes(macB), macs.out);

  // listing: both ports with their forwarder and method
  const l = await lab.ctl("-l", "-v");
  assert.match(
    l.out,
    new RegExp(`vale0:${lab.r} .*fwd:running ${lab.r} (xdp|packet) fwd_pid:\\d+`),
  );
  assert.match(l.out, new RegExp(`vale0:${lab.t} .*fwd:running ${lab.t}@${lab.nsB} tap`));
  const lv = await lab.ctl("-l", "-v");
  assert.match(lv.out, /info:"[^"]*(af_xdp|af_packet)/);
  // nothing unaccounted on the switch
  for (const port of switchInfo("vale0", { runDir: lab.runDir }).ports) {
    assert.equal(port.counters.sync_errors, 0);
    assert.equal(port.counters.drops.bad_slot, 0);
  }
});

/** Deno in a namespace: a TCP sink counting and checksumming until EOF, or a source. */
function nsTcp(ns: string, code: string, ms: number): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "eval", code],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).spawn();
}
// the byte at offset i of the stream is (i * 7 + (i >> 13)) & 255
const PATTERN = `const pat = (i) => (i * 7 + Math.floor(i / 8192)) & 255;`;

ktest("TCP transfer of 100 MB between the namespaces: exact byte count and content", async () => {
  await using lab = await new Lab().setup();
  const att = await lab.ctl("-a", `vale0:${lab.r}`);
  assert.ok(att.ok, att.err);
  assert.equal(lossOf(await ping(lab.nsA, lab.ipB, 2)), 0);
  const bytes = 100 * 1024 * 1024;
  const sink = nsTcp(
    lab.nsB,
    `${PATTERN}
    const l = Deno.listen({ hostname: "${lab.ipB}", port: 5301 });
    console.log("listening");
    const c = await l.accept();
    const buf = new Uint8Array(1 << 20);
    let n = 0, bad = -1;
    const t0 = performance.now();
    for (;;) {
      const k = await c.read(buf);
      if (k === null) break;
      if (bad < 0) for (let i = 0; i < k; i++) if (buf[i] !== pat(n + i)) { bad = n + i; break; }
      n += k;
    }
    console.log(JSON.stringify({ n, bad, ms: performance.now() - t0 }));`,
    120000,
  );
  const lines = sink.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let first = (await lines.read()).value ?? "";
    assert.match(first, /listening/);
    first = first.replace(/^listening\n?/, "");
    const t0 = performance.now();
    const src = await sh("ip", [
      "netns",
      "exec",
      lab.nsA,
      Deno.execPath(),
      "eval",
      `${PATTERN}
      const c = await Deno.connect({ hostname: "${lab.ipB}", port: 5301 });
      const chunk = 1 << 20, buf = new Uint8Array(chunk);
      for (let off = 0; off < ${bytes}; off += chunk) {
        for (let i = 0; i < chunk; i++) buf[i] = pat(off + i);
        for (let w = 0; w < chunk;) w += await c.write(buf.subarray(w));
      }
      c.close();`,
    ], 120000);
    assert.ok(src.ok, src.err);
    let rest = first;
    while (!rest.includes("}")) {
      const r = await lines.read();
      if (r.done) break;
      rest += r.value;
    }
    const ms = performance.now() - t0;
    const res = JSON.parse(rest.trim());
    assert.equal(res.bad, -1, `byte ${res.bad} differs`);
    assert.equal(res.n, bytes, "every byte arrived, no more");
    const a = lab.att(lab.r)!;
    console.log(
      `    TCP ${lab.r} (${a.mode}) -> vale0 -> TAP: ${bytes} bytes exact, ` +
        `${(bytes * 8 / (ms / 1000) / 1e9).toFixed(2)} Gbit/s end to end (pattern generated and ` +
        `checked in JS on both sides)`,
    );
  } finally {
    lines.releaseLock();
    try {
      sink.kill("SIGKILL");
    } catch { /* done */ }
    await sink.status.catch(() => {});
  }
});

ktest(
  "TCP rate between the namespaces through the switch (iperf3, 100 MB)",
  async () => {
    // the two namespaces as a topology (lib/topo/): A by a veth, B by a TAP
    const runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-kat-" });
    try {
      await using net = await Topology.from({
        name: `k${Deno.pid % 100000}`,
        switches: { s: {} },
        hosts: { a: { ip: "10.99.0.1/24" }, b: { ip: "10.99.0.2/24" } },
        links: [{ host: "a", switch: "s" }, { host: "b", switch: "s", kind: "tap" }],
      }).up({ runDir });
      assert.equal((await net.ping("a", "b", { count: 2 })).received, 2);
      const server = net.host("b").spawn(["iperf3", "-s", "-1", "-B", "10.99.0.2"], {
        stdout: "null",
        stderr: "null",
      });
      await until(
        async () => (await net.host("b").run(["ss", "-ltn"])).stdout.includes("10.99.0.2:5201"),
        10000,
        "iperf3 server listening",
      );
      const bytes = 100 * 1024 * 1024;
      const c = await net.host("a").run(["iperf3", "-c", "10.99.0.2", "-n", `${bytes}`, "-J"], {
        timeoutMs: 90000,
      });
      assert.ok(c.success, c.stdout + c.stderr);
      const j = JSON.parse(c.stdout);
      const sent = j.end.sum_sent.bytes;
      assert.ok(sent >= bytes, `sent ${sent}`);
      // iperf3 stops counting when the sender is done: what is still in flight is not in it
      assert.ok(j.end.sum_received.bytes > 0.95 * sent, JSON.stringify(j.end.sum_received));
      const veth = (await net.status()).links[0];
      console.log(
        `    iperf3 ${veth.port} (${veth.forwarder}) -> ${
          net.switchName("s")
        } -> TAP: ${sent} bytes, ` +
          `${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s, ` +
          `retransmits ${j.end.sum_sent.retransmits}`,
      );
      // every byte the receiver got crossed the switch (with its headers): iperf3 -n ends
      // the test once the sender has written its bytes, and what is still in flight then
      // may never be delivered, so the payload itself is no lower bound
      const got = j.end.sum_received.bytes;
      await until(
        () => net.counters("s", "a").tx_bytes >= got && net.counters("s", "b").rx_bytes >= got,
        5000,
        "what the receiver got crossed the switch",
      );
      await server.status;
    } finally {
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
    }
  },
  haveIperf ? "" : "needs iperf3 (scripts/install-deps.sh)",
);

ktest("detach while traffic flows: clean state, no stuck process", async () => {
  await using lab = await new Lab().setup();
  assert.ok((await lab.ctl("-a", `vale0:${lab.r}`)).ok);
  // a flood of pings keeps both forwarders busy
  const flood = new Deno.Command("ip", {
    args: ["netns", "exec", lab.nsA, "ping", "-f", "-q", "-w", "8", "-s", "1400", lab.ipB],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20000),
  }).spawn();
  try {
    await until(
      () => (lab.ports().find((p) => p.name === lab.r)?.counters.tx_packets ?? 0) > 200,
      5000,
      "traffic through the switch",
    );
    const a = lab.att(lab.r)!;
    const t0 = performance.now();
    const d = await lab.ctl("-d", `vale0:${lab.r}`);
    const ms = performance.now() - t0;
    assert.ok(d.ok, d.out + d.err);
    assert.ok(ms < 8000, `detach took ${ms} ms`);
    // the forwarder and its supervisor are gone, the port too
    assert.ok(!procsWith(`${lab.runDir}/.attach/vale0/${lab.r}.`).length, "no forwarder left");
    for (const pid of [a.pid, a.supervisorPid]) {
      assert.ok(!procsWith(lab.runDir).includes(pid), `pid ${pid} still runs`);
    }
    assert.ok(!lab.ports().some((p) => p.name === lab.r), "port removed");
    assert.equal(lab.att(lab.r), undefined, "attachment forgotten");
    // the TAP side still works; the veth side is cut off
    assert.equal(lab.att(lab.t)?.status, "running");
    assert.equal(lossOf(await ping(lab.nsA, lab.ipB, 2)), 100);
    // and it can be attached again
    assert.ok((await lab.ctl("-a", `vale0:${lab.r}`)).ok);
    await until(async () => lossOf(await ping(lab.nsA, lab.ipB, 1)) === 0, 5000, "ping again");
  } finally {
    try {
      flood.kill("SIGKILL");
    } catch { /* done */ }
    await flood.status.catch(() => {});
  }
});

ktest("SIGKILL of the forwarder: restarted by its supervisor; of both: reported dead", async () => {
  await using lab = await new Lab().setup();
  assert.ok((await lab.ctl("-a", `vale0:${lab.r}`)).ok);
  assert.equal(lossOf(await ping(lab.nsA, lab.ipB, 2)), 0);
  const a = lab.att(lab.r)!;
  assert.ok(a.pid > 0 && a.supervisorPid > 0);
  Deno.kill(a.pid, "SIGKILL");
  // restarted: a new pid, one restart, traffic flows again
  await until(
    () => {
      const x = lab.att(lab.r);
      return x?.status === "running" && x.pid !== a.pid;
    },
    10000,
    "the forwarder restarted",
  );
  const b = lab.att(lab.r)!;
  assert.equal(b.restarts, 1);
  assert.equal(b.supervisorPid, a.supervisorPid);
  const l = await lab.ctl("-l", "-v");
  assert.match(l.out, new RegExp(`fwd:running ${lab.r} .* fwd_pid:${b.pid} restarts:1`));
  await until(
    async () => lossOf(await ping(lab.nsA, lab.ipB, 1)) === 0,
    8000,
    "ping after restart",
  );
  assert.match(Deno.readTextFileSync(b.log), /ended by SIGKILL; restart #1/);

  // kill both: nothing restarts it; the listing says so; -a restarts, -d cleans up
  Deno.kill(b.supervisorPid, "SIGKILL");
  Deno.kill(b.pid, "SIGKILL");
  await until(() => lab.att(lab.r)?.status === "dead", 5000, "reported dead");
  const l2 = await lab.ctl("-l", "-v");
  assert.match(
    l2.out,
    new RegExp(`vale0:${lab.r} .*pid:- .*fwd:dead .*is gone and nothing restarts it`),
  );
  const re = await lab.ctl("-a", `vale0:${lab.r}`);
  assert.ok(re.ok, re.err);
  assert.equal(lab.att(lab.r)?.status, "running");
  await until(async () => lossOf(await ping(lab.nsA, lab.ipB, 1)) === 0, 8000, "ping after -a");
  const d = await lab.ctl("-d", `vale0:${lab.r}`);
  assert.ok(d.ok, d.err);
  assert.deepEqual(
    procsWith(`.attach/vale0/${lab.r}.`).filter((p) => procsWith(lab.runDir).includes(p)),
    [],
  );
  assert.ok(!lab.ports().some((p) => p.name === lab.r));
});

ktest("the veth disappears while attached: detached with a clear message", async () => {
  await using lab = await new Lab().setup();
  assert.ok((await lab.ctl("-a", `vale0:${lab.r}`)).ok);
  assert.equal(lossOf(await ping(lab.nsA, lab.ipB, 1)), 0);
  const a = lab.att(lab.r)!;
  await ip("link", "del", lab.r);
  await until(() => lab.att(lab.r)?.status === "gone", 5000, "state gone");
  const g = lab.att(lab.r)!;
  assert.match(g.message, new RegExp(`'${lab.r}' was removed.*detached from vale0`));
  // the forwarder and the supervisor exited by themselves, the port is off the switch
  await until(
    () => !procsWith(`${lab.runDir}/.attach/vale0/${lab.r}.`).length,
    5000,
    "processes gone",
  );
  assert.ok(!lab.ports().some((p) => p.name === lab.r));
  // read again: "gone" is written by the forwarder just before it exits, and the
  // pid reads 0 once it has exited (reading it with "gone" raced with the exit)
  assert.equal(lab.att(lab.r)!.pid, 0);
  void a;
  const l = await lab.ctl("-l", "-v");
  assert.match(l.out, new RegExp(`vale0:${lab.r} gone: .*was removed`));
  const d = await lab.ctl("-d", `vale0:${lab.r}`);
  assert.ok(d.ok, d.err);
  assert.match(d.out, /detached \(it was gone/);
  assert.equal(lab.att(lab.r), undefined);
  // the rest of the switch is fine
  assert.equal(lab.att(lab.t)?.status, "running");
});

ktest("interface down and up: state follows, traffic resumes", async () => {
  await using lab = await new Lab().setup();
  assert.ok((await lab.ctl("-a", `vale0:${lab.r}`)).ok);
  assert.equal(lossOf(await ping(lab.nsA, lab.ipB, 1)), 0);
  await ip("link", "set", lab.r, "down");
  await until(() => lab.att(lab.r)?.status === "down", 5000, "state down");
  assert.match(lab.att(lab.r)!.message, /is down/);
  const l = await lab.ctl("-l", "-v");
  assert.match(l.out, new RegExp(`fwd:down ${lab.r}.*is down`));
  // frames for it are dropped and counted, not queued
  await ping(lab.nsB, lab.ipA, 2);
  await ip("link", "set", lab.r, "up");
  await until(() => lab.att(lab.r)?.status === "running", 5000, "running again");
  await until(async () => lossOf(await ping(lab.nsA, lab.ipB, 1)) === 0, 8000, "ping after up");
});

ktest("MTU 9000: frames larger than a buffer cross the switch (MOREFRAG)", async () => {
  await using lab = await new Lab().setup();
  assert.ok((await lab.ctl("-a", `vale0:${lab.r}`)).ok);
  for (const [ns, dev] of [[lab.nsA, lab.a], [null, lab.r], [lab.nsB, lab.t]] as const) {
    await ip(...(ns ? ["-n", ns] : []), "link", "set", dev, "mtu", "9000");
  }
  // the forwarder reopens the interface with the new MTU
  await until(
    () => Deno.readTextFileSync(lab.att(lab.r)!.log).includes("MTU 1500 -> 9000"),
    5000,
    "reopen on the MTU change",
  );
  await sleep(300);
  const p = await ping(lab.nsA, lab.ipB, 3, ["-s", "8000", "-M", "do"]);
  assert.equal(lossOf(p), 0, p.out + p.err);
  const b = await ping(lab.nsB, lab.ipA, 3, ["-s", "8972", "-M", "do"]);
  assert.equal(lossOf(b), 0, b.out + b.err);
});

ktest("-h: the host stack through a TAP with the interface's MAC, removed by -d", async () => {
  await using lab = await new Lab().setup({ tap: false });
  const h = await lab.ctl("-h", `vale0:${lab.r}`);
  assert.ok(h.ok, h.err);
  const host = `${lab.r}-h`;
  assert.match(h.out, new RegExp(`host stack: vale0:${host} <-> TAP ${host}`));
  assert.equal(await macOf(null, host), await macOf(null, lab.r));
  assert.deepEqual(lab.ports().map((p) => p.name).sort(), [lab.r, host].sort());
  // the host reaches namespace A through vale0 once it has an address on the TAP
  await ip("addr", "add", "10.99.0.3/24", "dev", host);
  const p = await sh("ping", ["-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "-I", host, lab.ipA]);
  assert.equal(lossOf(p), 0, p.out + p.err);
  // -d on the host port detaches the whole attachment; the TAP goes
  assert.ok((await lab.ctl("-d", `vale0:${host}`)).ok);
  assert.equal((await sh("ip", ["link", "show", host])).ok, false, "host TAP deleted");
  assert.deepEqual(lab.ports(), []);
});

ktest("kernel ports by name: openPort('tap:…') and 'netmap:…' in one process", async () => {
  await using lab = await new Lab().setup({ tap: false });
  // netmap: on the root end of the veth; the namespace answers ARP through it
  using p = openPort(`netmap:${lab.r}`, { runDir: lab.runDir }) as KernelPort;
  assert.equal(p.name, `netmap:${lab.r}`);
  assert.match(p.kernel.mode, /af_xdp|af_packet/);
  const macA = await macOf(lab.nsA, lab.a);
  const arp = (tpa: string) => {
    const f = new Uint8Array(60);
    f.fill(0xff, 0, 6);
    f.set([0x02, 0, 0, 0, 0x99, 0x01], 6);
    f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
    f.set([0x02, 0, 0, 0, 0x99, 0x01], 22);
    f.set([10, 99, 0, 7], 28);
    f.set(tpa.split(".").map(Number), 38);
    return f;
  };
  const isReply = (f: Uint8Array) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2;
  assert.ok(p.send(arp(lab.ipA)));
  p.txsync();
  let reply: Uint8Array | undefined;
  for (let i = 0; i < 20 && !reply; i++) reply = (await p.receive(100)).find(isReply);
  assert.ok(reply, "ARP reply from namespace A");
  assert.equal(
    [...reply.subarray(22, 28)].map((x) => x.toString(16).padStart(2, "0")).join(":"),
    macA,
  );
  assert.equal(p.forwarderStats().state, "running");

  // tap: created by the port, the host stack answers ARP for its address
  const tap = `${TAG}q`;
  using q = openPort(`tap:${tap}`, { runDir: lab.runDir }) as KernelPort;
  assert.equal(q.kernel.kind, "tap");
  await ip("addr", "add", "10.98.0.1/24", "dev", tap);
  const a2 = arp("10.98.0.1");
  a2.set([10, 98, 0, 7], 28);
  assert.ok(q.send(a2));
  q.txsync();
  let r2: Uint8Array | undefined;
  for (let i = 0; i < 20 && !r2; i++) r2 = (await q.receive(100)).find(isReply);
  assert.ok(r2, "ARP reply from the host stack through the TAP");
  q.close();
  assert.equal((await sh("ip", ["link", "show", tap])).ok, false, "the TAP goes with the port");
  p.close();
  // the private pipes are gone with the ports
  assert.deepEqual([...Deno.readDirSync(`${lab.runDir}/.kernel`)], []);
  // a bad name and a missing interface are clear
  assert.throws(() => openPort(`netmap:${TAG}zz`, { runDir: lab.runDir }), /no network interface/);
  assert.throws(() => openPort(`netmap:${lab.r}^`, { runDir: lab.runDir }), /host stack/);
});

ktest("without privileges: the missing capability is named", async () => {
  await using lab = await new Lab().setup({ tap: false });
  await Deno.chmod(lab.runDir, 0o1777);
  const r = await sh(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--inh-caps=-all",
      Deno.execPath(),
      "run",
      "-A",
      "--no-lock",
      "--config",
      `${ROOT}deno.json`,
      `${ROOT}cli/vale-ctl.ts`,
      "-a",
      `vale0:${lab.r}`,
    ],
    60000,
    { VALE_RUN_DIR: lab.runDir, DENO_DIR: "/tmp/deno-nobody" },
  );
  assert.equal(r.ok, false);
  assert.match(r.err, /needs CAP_NET_ADMIN and CAP_NET_RAW/, r.err);
  assert.match(r.err, /failed to attach vale0:\S+: Operation not permitted/);
  assert.deepEqual(lab.attachments(), []);
}, haveCmd("setpriv", ["--version"]) ? "" : "needs setpriv (util-linux)");

// A container's interface: attached from inside its namespace.
ktest("an interface inside a namespace (netns option) attached to the switch", async () => {
  await using lab = await new Lab().setup();
  // attach A's own end from inside namespace A (the veth root end stays unused)
  await attachInterface(`vale0:${lab.a}`, { runDir: lab.runDir, netns: lab.nsA });
  await ip("-n", lab.nsA, "addr", "flush", "dev", lab.a);
  // the root end gets A's old address: the root namespace now talks to B through vale0
  await ip("addr", "add", `${lab.ipA}/24`, "dev", lab.r);
  try {
    const p = await sh("ping", [
      "-n",
      "-q",
      "-c",
      "3",
      "-i",
      "0.2",
      "-W",
      "1",
      "-I",
      lab.r,
      lab.ipB,
    ]);
    assert.equal(lossOf(p), 0, p.out + p.err);
    assert.ok(KernelIo.link(lab.a, lab.nsA).up);
    assert.equal(lab.att(lab.a)?.netns, lab.nsA);
  } finally {
    await sh("ip", ["addr", "flush", "dev", lab.r]);
  }
});

/** An ARP request from `mac`/`spa` for `tpa`. */
function arpRequest(mac: number[], spa: string, tpa: string): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set(mac, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  f.set(mac, 22);
  f.set(spa.split(".").map(Number), 28);
  f.set(tpa.split(".").map(Number), 38);
  return f;
}
const isArpReply = (f: Uint8Array) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2;

ktest(
  "a VM's TAP (its fd held by another process, as QEMU does) attached by its kernel side",
  async () => {
    await using lab = await new Lab().setup({ tap: false });
    assert.ok((await lab.ctl("-a", `vale0:${lab.r}`)).ok);
    // the "VM": this process holds the TAP's fd, as `qemu -netdev tap,ifname=...,script=no` does
    const tq = `${TAG}v`;
    using vm = KernelIo.open(tq, { kind: "tap", up: true });
    try {
      const att = await lab.ctl("-a", `vale0:${tq}`);
      assert.ok(att.ok, att.err);
      assert.match(att.out, /attached via (af_xdp|af_packet)/, "the kernel side, not the fd");
      const vmMac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
      let reply: Uint8Array | undefined;
      for (let i = 0; i < 20 && !reply; i++) {
        vm.send([arpRequest(vmMac, "10.99.0.9", lab.ipA)]);
        const end = Date.now() + 200;
        while (!reply && Date.now() < end) {
          await vm.wait(1, 50);
          reply = vm.recv().find(isArpReply);
        }
      }
      assert.ok(reply, "namespace A answered the VM's ARP through vale0");
      assert.equal(
        [...reply.subarray(22, 28)].map((x) => x.toString(16).padStart(2, "0")).join(":"),
        await macOf(lab.nsA, lab.a),
      );
      assert.ok((await lab.ctl("-d", `vale0:${tq}`)).ok);
    } finally {
      vm.close();
    }
  },
);

ktest(
  "AF_PACKET: chosen when XDP is taken, forced with valeX:packet:IF; super-frames are reported",
  async () => {
    await using lab = await new Lab().setup();
    // someone else's XDP program on the interface: auto falls back, and says why (without a
    // header, `--vnet-hdr 0`, auto means AF_XDP on a veth too: tests/offload_kernel_test.ts
    // covers the default, AF_PACKET with the header)
    const other = KernelIo.open(lab.r, { kind: "xdp" });
    let att: Out;
    try {
      att = await lab.ctl("-a", `vale0:${lab.r}`, "--vnet-hdr", "0");
    } finally {
      other.close(); // (its XDP program would keep the frames from the PACKET socket)
    }
    assert.ok(att.ok, att.err);
    assert.match(att.out, /attached via af_packet .*\(af_packet: .*/);
    assert.equal(lab.att(lab.r)?.method, "packet");
    await until(
      async () => lossOf(await ping(lab.nsA, lab.ipB, 1)) === 0,
      8000,
      "ping over AF_PACKET",
    );
    assert.ok((await lab.ctl("-d", `vale0:${lab.r}`)).ok);

    // forced, without a header: the MTU-sized path, where super-frames are cut
    const f = await lab.ctl("-a", `vale0:packet:${lab.r}`, "--vnet-hdr", "0");
    assert.ok(f.ok, f.err);
    assert.match(f.out, /attached via af_packet .*\(requested\)/);
    assert.equal(lossOf(await ping(lab.nsA, lab.ipB, 2)), 0);
    if (haveIperf) {
      // TSO on the sender: 64 KiB super-frames are cut by the ring; the attachment says so
      await sh("ip", ["netns", "exec", lab.nsA, "ethtool", "-K", lab.a, "tso", "on", "gso", "on"]);
      const srv = new Deno.Command("ip", {
        args: ["netns", "exec", lab.nsB, "iperf3", "-s", "-1", "-B", lab.ipB],
        stdout: "null",
        stderr: "null",
        signal: AbortSignal.timeout(60000),
      }).spawn();
      try {
        await sleep(500);
        await sh("ip", [
          "netns",
          "exec",
          lab.nsA,
          "iperf3",
          "-c",
          lab.ipB,
          "-t",
          "2",
          "--connect-timeout",
          "2000",
        ], 15000);
        await until(() => !!lab.att(lab.r)?.warning, 5000, "a warning about super-frames");
        assert.match(lab.att(lab.r)!.warning!, /larger than the MTU.*tso off gso off/);
        assert.match((await lab.ctl("-l", "-v")).out, /warning: \d+ frames larger than the MTU/);
      } finally {
        try {
          srv.kill("SIGKILL");
        } catch { /* done */ }
        await srv.status.catch(() => {});
      }
      // offloads off on the sender: TCP works over AF_PACKET
      KernelIo.setOffloads(lab.a, false, lab.nsA);
      const srv2 = new Deno.Command("ip", {
        args: ["netns", "exec", lab.nsB, "iperf3", "-s", "-1", "-B", lab.ipB, "-J"],
        stdout: "null",
        stderr: "null",
        signal: AbortSignal.timeout(60000),
      }).spawn();
      try {
        await sleep(500);
        const c = await sh(
          "ip",
          ["netns", "exec", lab.nsA, "iperf3", "-c", lab.ipB, "-n", `${100 * 1024 * 1024}`, "-J"],
          60000,
        );
        assert.ok(c.ok, c.out + c.err);
        const j = JSON.parse(c.out);
        console.log(
          `    iperf3 over af_packet -> vale0 -> TAP: ${j.end.sum_sent.bytes} bytes, ` +
            `${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`,
        );
      } finally {
        try {
          srv2.kill("SIGKILL");
        } catch { /* done */ }
        await srv2.status.catch(() => {});
      }
    }
  },
);

const haveQemu = haveCmd("qemu-system-x86_64", ["--version"]);

ktest(
  "QEMU: its -netdev tap on vale0, a namespace pings QEMU's user-mode network through it",
  async () => {
    await using lab = await new Lab().setup({ tap: false });
    // namespace A joins QEMU's slirp network (10.0.2.0/24, gateway 10.0.2.2)
    await ip("-n", lab.nsA, "addr", "flush", "dev", lab.a);
    await ip("-n", lab.nsA, "addr", "add", "10.0.2.15/24", "dev", lab.a);
    assert.ok((await lab.ctl("-a", `vale0:${lab.r}`)).ok);
    const tq = `${TAG}m`;
    await ip("tuntap", "add", tq, "mode", "tap");
    await ip("link", "set", tq, "up");
    // no guest needed: QEMU's hub joins the tap netdev to its user-mode (slirp) network,
    // which answers ARP and ping for 10.0.2.2 like a guest's gateway
    const qemu = new Deno.Command("qemu-system-x86_64", {
      args: [
        "-machine",
        "none",
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-netdev",
        // with virtio-net headers, as the README's VM recipe (a guest's GSO frames pass whole)
        `tap,id=t0,ifname=${tq},script=no,downscript=no,vnet_hdr=on`,
        "-netdev",
        "user,id=u0,net=10.0.2.0/24",
        "-netdev",
        "hubport,id=h0,hubid=0,netdev=t0",
        "-netdev",
        "hubport,id=h1,hubid=0,netdev=u0",
      ],
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(60000),
    }).spawn();
    try {
      // QEMU holds the TAP's fd: vale attaches its kernel side
      await until(
        async () => (await ip("link", "show", tq)).includes("LOWER_UP"),
        10000,
        "QEMU opened the TAP",
      );
      const att = await lab.ctl("-a", `vale0:${tq}`);
      assert.ok(att.ok, att.err);
      // the TAP's kernel side: AF_PACKET with a header keeps what QEMU writes whole
      assert.match(att.out, /attached via af_packet vnet_hdr 12 .*\(tun: /);
      const p = await ping(lab.nsA, "10.0.2.2", 3);
      assert.equal(lossOf(p), 0, p.out + p.err);
      const big = await ping(lab.nsA, "10.0.2.2", 2, ["-s", "8000"]);
      assert.equal(lossOf(big), 0, big.out + big.err);
      const macs = switchInfo("vale0", { runDir: lab.runDir }).macs.map((m) => m.mac);
      assert.ok(macs.includes("52:55:0a:00:02:02"), `slirp's gateway learned: ${macs}`);
      assert.ok((await lab.ctl("-d", `vale0:${tq}`)).ok);
    } finally {
      try {
        qemu.kill("SIGKILL");
      } catch { /* done */ }
      await qemu.status.catch(() => {});
      await sh("ip", ["link", "del", tq]);
    }
  },
  haveQemu ? "" : "needs qemu-system-x86_64 (scripts/install-deps.sh --qemu)",
);
