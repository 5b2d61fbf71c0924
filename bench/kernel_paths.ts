// Kernel traffic through vale0 vs. the Linux bridge, on the same kind of
// namespaces: what the kernel-interfaces work reports (docs/kernel.md).
//
//   deno run -A bench/kernel_paths.ts [--seconds 5] [--json FILE] [--only vale-tap,...]
//
// Topologies (all in namespaces named kp<pid>…, removed at the end; the root
// namespace only holds the vale-attached veth ends and its forwarders):
//   vale-veth    [A] a ══ r ─ vale0 ─ rb ══ b [B]       (both veth ends attached: AF_PACKET
//                                                        with virtio-net headers, offloads kept,
//                                                        the kernel fast path on: learned unicast
//                                                        frames handed over by a tc program)
//   vale-veth-nofast                                     the same with `--no-kfast`: every frame
//                                                        through the forwarders
//   vale-tap     [A] TAP ta ─ vale0 ─ TAP tb [B]         (vale0:tap:NAME in each namespace:
//                                                        IFF_VNET_HDR, TSO/checksum offloads)
//   vale-veth-nohdr, vale-tap-nohdr   the same with `--vnet-hdr 0` (MTU-sized frames: AF_XDP
//                                                        on the veths, TAPs without offloads)
//   linux-bridge [A] a ══ r ─ br0 ─ rb ══ b [B]         (br0 in its own namespace)
// Per topology: trafgen in A sends 60 B and 1514 B frames (ethertype 0x88b5)
// for N seconds, then the other way (B → A); the rate is what the receiving
// interface counted (its rx counter, after a 1 s warm-up). Then iperf3 A → B
// for N seconds each: TCP 1 and 4 streams, UDP 1472-byte datagrams; with the
// machine's CPU (cores busy) over each window, so CPU per Gbit/s.
// Needs root, iperf3, ip; trafgen (netsniff-ng) if installed, else bench/c/tx_ring. Other load skews rates:
// the load average is printed before and after.
//
// The same topologies are rows of the side-by-side table (bench/kernel_rows.ts).

import { parseArgs } from "node:util";
import { attachInterface, detachInterface, listAttachments } from "../lib/attach/attach.ts";
import { buildPeers } from "./build_peers.ts";
import { switchInfo } from "../lib/switch/control.ts";

const dec = new TextDecoder();
/** Measured window (seconds) of each measurement; main() sets it from --seconds. */
let SECS = 5;
/** Ring slots of the vale ports (0: the attachment default). */
let SLOTS = 0;
const TAG = `kp${Deno.pid}`;

function sh(cmd: string, args: string[], ms = 60000) {
  const r = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).outputSync();
  return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}
function ip(...a: string[]) {
  const r = sh("ip", a);
  if (!r.ok) throw new Error(`ip ${a.join(" ")}: ${r.err}`);
  return r.out;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

function rxPackets(
  ns: string,
  dev: string,
  dir: "rx" | "tx" = "rx",
): { pkts: number; bytes: number } {
  const j = JSON.parse(ip("-n", ns, "-s", "-j", "link", "show", dev))[0];
  return { pkts: j.stats64[dir].packets, bytes: j.stats64[dir].bytes };
}

interface Row {
  topo: string;
  dir: "A->B" | "B->A";
  size: number | string;
  mpps?: number;
  gbps: number;
  /** Machine-wide busy cores per Gbit/s received (iperf3 rows). */
  cpuPerGbps?: number;
  note?: string;
}

/** Busy CPU of the whole machine (cores) between two calls. */
function machineBusy(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.reduce((x, y) => x + y, 0);
  return { busy: total - idle, total };
}
/** Measures `fn` with the machine's busy cores over it (all CPUs: kernel work included). */
export async function withCpu<T>(fn: () => Promise<T>): Promise<{ r: T; cores: number }> {
  const c0 = machineBusy(), t0 = performance.now();
  const r = await fn();
  const c1 = machineBusy(), secs = (performance.now() - t0) / 1000;
  const hz = 100; // USER_HZ of /proc/stat
  return { r, cores: secs > 0 ? (c1.busy - c0.busy) / hz / secs : 0 };
}

let trafgen: boolean | undefined;
async function haveTrafgen(): Promise<boolean> {
  if (trafgen === undefined) {
    try {
      trafgen = (await new Deno.Command("trafgen", { args: ["-v"], stdout: "null", stderr: "null" })
        .output()).success;
    } catch {
      trafgen = false;
    }
  }
  return trafgen;
}

export async function blast(nsA: string, devA: string, nsB: string, devB: string, size: number) {
  const cfg = await Deno.makeTempFile({ suffix: ".cfg" });
  Deno.writeTextFileSync(
    cfg,
    `{ 0x02,0,0,0,0x0b,0, 0x02,0,0,0,0x0a,0, c16(0x88b5), fill(0x55, ${size - 14}) }\n`,
  );
  // trafgen when installed, else bench/c/tx_ring (the same PACKET_MMAP TX ring way)
  const sender = (await haveTrafgen())
    ? ["trafgen", "-o", devA, "-P", "1", "-Q", "--no-sock-mem", "-i", cfg]
    : [
      (await buildPeers({ quiet: true })).tx_ring,
      "-i",
      devA,
      "-l",
      `${size}`,
      "-D",
      "02:00:00:00:0b:00",
      "-S",
      "02:00:00:00:0a:00",
      "-q",
    ];
  const tg = new Deno.Command("ip", {
    args: ["netns", "exec", nsA, ...sender],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await sleep(1000); // warm-up
    const t0 = performance.now(), a = rxPackets(nsB, devB), ta = rxPackets(nsA, devA, "tx");
    await sleep(SECS * 1000);
    const t1 = performance.now(), b = rxPackets(nsB, devB), tb = rxPackets(nsA, devA, "tx");
    const s = (t1 - t0) / 1000;
    const pps = (b.pkts - a.pkts) / s;
    return {
      mpps: pps / 1e6,
      gbps: ((b.bytes - a.bytes) * 8) / s / 1e9,
      offered: (tb.pkts - ta.pkts) / s / 1e6,
    };
  } finally {
    // trafgen forks a worker per CPU: stop them and the parent
    let kids: number[] = [];
    try {
      kids = Deno.readTextFileSync(`/proc/${tg.pid}/task/${tg.pid}/children`).trim().split(/\s+/)
        .filter(Boolean).map(Number);
    } catch { /* gone */ }
    for (const p of [...kids, tg.pid]) {
      try {
        Deno.kill(p, "SIGINT");
      } catch { /* gone */ }
    }
    const t = setTimeout(() => {
      for (const p of [...kids, tg.pid]) {
        try {
          Deno.kill(p, "SIGKILL");
        } catch { /* gone */ }
      }
    }, 3000);
    await tg.status;
    clearTimeout(t);
    Deno.removeSync(cfg);
  }
}

/**
 * iperf3 A -> B for SECS: TCP with `streams` streams, or UDP datagrams of `udpLen` bytes
 * (unlimited rate). Gbit/s received (application bytes), retransmits or lost datagrams.
 */
export async function iperf(
  nsA: string,
  nsB: string,
  ipB: string,
  streams = 1,
  udpLen = 0,
): Promise<{ gbps: number; retr: number; lost?: number }> {
  const srv = new Deno.Command("ip", {
    args: ["netns", "exec", nsB, "iperf3", "-s", "-1", "-B", ipB],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await sleep(500);
    const extra = udpLen ? ["-u", "-b", "0", "-l", `${udpLen}`] : [];
    const c = sh("ip", [
      "netns",
      "exec",
      nsA,
      "iperf3",
      "-c",
      ipB,
      "-t",
      `${SECS}`,
      "-P",
      `${streams}`,
      ...extra,
      "-J",
    ], 60000 + SECS * 2000);
    if (!c.ok) throw new Error(`iperf3: ${c.out} ${c.err}`);
    const j = JSON.parse(c.out);
    if (udpLen) {
      const s = j.end.sum_received ?? j.end.sum;
      return { gbps: s.bits_per_second / 1e9, retr: 0, lost: s.lost_packets ?? 0 };
    }
    return { gbps: j.end.sum_received.bits_per_second / 1e9, retr: j.end.sum_sent.retransmits };
  } finally {
    try {
      srv.kill("SIGKILL");
    } catch { /* done */ }
    await srv.status;
  }
}

/** The namespaces and addresses every topology uses. */
export const nsA = `${TAG}A`, nsB = `${TAG}B`;
const nsS = `${TAG}S`;
const a = `${TAG}a`, r = `${TAG}r`, rb = `${TAG}x`, b = `${TAG}b`;
const ta = `${TAG}ta`, tb = `${TAG}tb`;
export const ipA = "10.97.0.1", ipB = "10.97.0.2";
let runDir = "";

/** The topologies, in the order main() runs them. */
export const TOPOLOGIES = [
  "vale-veth",
  "vale-veth-nofast",
  "vale-tap",
  "vale-veth-nohdr",
  "vale-tap-nohdr",
  "linux-bridge",
] as const;
export type Topo = typeof TOPOLOGIES[number];

/** A's and B's interface in their namespaces. */
export function devices(topo: Topo): { devA: string; devB: string } {
  return topo.startsWith("vale-tap") ? { devA: ta, devB: tb } : { devA: a, devB: b };
}

function netns(ns: string) {
  ip("netns", "add", ns);
  sh("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
  sh("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
  ip("-n", ns, "link", "set", "lo", "up");
}

/** Removes everything setup() made (safe to call twice). */
export async function teardown() {
  if (runDir) {
    for (const x of listAttachments(undefined, { runDir })) {
      await detachInterface(x.name, { runDir }).catch(() => {});
    }
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
    runDir = "";
  }
  for (const ns of [nsA, nsB, nsS]) sh("ip", ["netns", "del", ns]);
  for (const l of [r, rb, ta, tb]) sh("ip", ["link", "del", l]);
}

/** A veth pair: `inside` in namespace ns with address addr, `root` in ours (up). */
function veth(ns: string, inside: string, root: string, addr: string) {
  ip("link", "add", root, "type", "veth", "peer", "name", inside);
  ip("link", "set", inside, "netns", ns);
  ip("-n", ns, "addr", "add", `${addr}/24`, "dev", inside);
  ip("-n", ns, "link", "set", inside, "up");
  ip("link", "set", root, "up");
}

/** Builds topology `topo`; ping A -> B works when it returns. */
export async function setup(topo: Topo) {
  netns(nsA);
  netns(nsB);
  if (topo === "linux-bridge") {
    veth(nsA, a, r, ipA);
    veth(nsB, b, rb, ipB);
    netns(nsS);
    ip("link", "set", r, "netns", nsS);
    ip("link", "set", rb, "netns", nsS);
    ip("-n", nsS, "link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0");
    for (const d of [r, rb]) {
      ip("-n", nsS, "link", "set", d, "master", "br0");
      ip("-n", nsS, "link", "set", d, "up");
    }
    ip("-n", nsS, "link", "set", "br0", "up");
  } else {
    runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-kp-" });
    const vnetHdr = topo.endsWith("-nohdr") ? 0 : undefined; // undefined: the default (12)
    const kfast = topo === "vale-veth-nofast" ? false : undefined; // undefined: on
    const o = { runDir, slots: SLOTS, vnetHdr, kfast } as const;
    if (topo.startsWith("vale-tap")) {
      // the TAPs are made inside the namespaces by the forwarders (vale0:tap:NAME)
      for (const [ns, t, addr] of [[nsA, ta, ipA], [nsB, tb, ipB]]) {
        await attachInterface(`vale0:tap:${t}`, { ...o, netns: ns });
        ip("-n", ns, "addr", "add", `${addr}/24`, "dev", t);
      }
    } else {
      veth(nsA, a, r, ipA);
      veth(nsB, b, rb, ipB);
      await attachInterface(`vale0:${r}`, o);
      await attachInterface(`vale0:${rb}`, o);
    }
  }
  const ping = sh("ip", ["netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-q", ipB]);
  if (!/ 0% packet loss/.test(ping.out)) throw new Error(`${topo}: no ping: ${ping.out}`);
}

/** How the vale ports of the current topology are served ("" for the bridge). */
export function attachModes(): string {
  return runDir
    ? listAttachments(undefined, { runDir }).map((x) => `${x.port}:${x.mode}`).join(", ")
    : "";
}

/** Frames the switch dropped at full RX rings so far (all ports of vale0; 0 for the bridge). */
export function switchRingFull(): number {
  if (!runDir) return 0;
  try {
    return switchInfo("vale0", { runDir }).ports.reduce(
      (t, p) => t + p.counters.drops.ring_full,
      0,
    );
  } catch {
    return 0;
  }
}

/** Sets the measured window and the vale ports' ring slots. */
export function configure(seconds: number, slots = 0) {
  SECS = seconds;
  SLOTS = slots;
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "5" },
      json: { type: "string" },
      only: { type: "string" },
      slots: { type: "string", default: "0" },
      "no-frames": { type: "boolean" },
    },
  });
  configure(Number(values.seconds), Number(values.slots));
  const rows: Row[] = [];
  const topos = (values.only ? values.only.split(",") : [...TOPOLOGIES]) as Topo[];
  console.log(`load average before: ${load()}`);
  try {
    for (const topo of topos) {
      await setup(topo);
      try {
        const { devA, devB } = devices(topo);
        const method = attachModes();
        for (const dir of values["no-frames"] ? [] : ["A->B", "B->A"] as const) {
          const [txNs, txDev, rxNs, rxDev] = dir === "A->B"
            ? [nsA, devA, nsB, devB]
            : [nsB, devB, nsA, devA];
          for (const size of [60, 1514]) {
            let m = await blast(txNs, txDev, rxNs, rxDev, size);
            if (m.offered === 0) m = await blast(txNs, txDev, rxNs, rxDev, size); // no start
            rows.push({
              topo,
              dir,
              size,
              mpps: m.mpps,
              gbps: m.gbps,
              note: `offered ${m.offered.toFixed(3)} Mpps`,
            });
            console.log(
              `${topo.padEnd(16)} ${dir} ${String(size).padStart(5)} B  ${
                m.mpps.toFixed(3)
              } Mpps  ` +
                `${m.gbps.toFixed(2)} Gbit/s  (trafgen offered ${m.offered.toFixed(3)} Mpps)`,
            );
          }
        }
        for (
          const [what, streams, udp] of [["TCP x1", 1, 0], ["TCP x4", 4, 0], [
            "UDP 1472",
            1,
            1472,
          ]] as const
        ) {
          const full0 = switchRingFull();
          const { r: c, cores } = await withCpu(() => iperf(nsA, nsB, ipB, streams, udp));
          const full = switchRingFull() - full0;
          rows.push({
            topo,
            dir: "A->B",
            size: what,
            gbps: c.gbps,
            cpuPerGbps: cores / Math.max(c.gbps, 1e-9),
            note: (udp ? `lost ${c.lost}` : `retransmits ${c.retr}`) +
              (runDir ? `, switch ring_full ${full}` : ""),
          });
          console.log(
            `${topo.padEnd(16)} A->B ${what.padStart(8)}  ${c.gbps.toFixed(2)} Gbit/s  ` +
              `${cores.toFixed(2)} cores busy (${(cores / Math.max(c.gbps, 1e-9)).toFixed(2)} ` +
              `per Gbit/s)  ${udp ? `lost ${c.lost}` : `retransmits ${c.retr}`}` +
              `${runDir ? `  ring_full ${full}` : ""}  ${method}`,
          );
        }
      } finally {
        await teardown();
      }
    }
  } finally {
    await teardown();
    console.log(`load average after: ${load()}`);
  }
  if (values.json) {
    Deno.writeTextFileSync(values.json, JSON.stringify({ load: load(), rows }, null, 1));
  }
}

if (import.meta.main) await main();
