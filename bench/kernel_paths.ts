// Kernel traffic through vale0 vs. the Linux bridge, on the same kind of
// namespaces: what the kernel-interfaces work reports (docs/kernel.md).
//
//   deno run -A bench/kernel_paths.ts [--seconds 5] [--json FILE] [--only vale-tap,...]
//
// Topologies (all in namespaces named kp<pid>…, removed at the end; the root
// namespace only holds the vale-attached veth ends and its forwarders):
//   vale-tap     [A] a ══ r ─ vale0 ─ TAP t [B]         (vale-ctl -a vale0:r, vale0:tap:t in B)
//   vale-veth    [A] a ══ r ─ vale0 ─ rb ══ b [B]       (both veth ends attached)
//   linux-bridge [A] a ══ r ─ br0 ─ rb ══ b [B]         (br0 in its own namespace)
// Per topology: trafgen in A sends 60 B and 1514 B frames (ethertype 0x88b5)
// for N seconds, then the other way (B → A); the rate is what the receiving
// interface counted (its rx counter, after a 1 s warm-up). Then an iperf3 TCP stream A → B for N seconds.
// Needs root, trafgen (netsniff-ng), iperf3, ip. Other load skews rates:
// the load average is printed before and after.

import { parseArgs } from "node:util";
import { attachInterface, detachInterface, listAttachments } from "../lib/attach/attach.ts";

const dec = new TextDecoder();
const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    json: { type: "string" },
    only: { type: "string" },
    slots: { type: "string", default: "0" },
  },
});
const SECS = Number(values.seconds);
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
  size: number | "tcp";
  mpps?: number;
  gbps: number;
  note?: string;
}

async function blast(nsA: string, devA: string, nsB: string, devB: string, size: number) {
  const cfg = await Deno.makeTempFile({ suffix: ".cfg" });
  Deno.writeTextFileSync(
    cfg,
    `{ 0x02,0,0,0,0x0b,0, 0x02,0,0,0,0x0a,0, c16(0x88b5), fill(0x55, ${size - 14}) }\n`,
  );
  const tg = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      nsA,
      "trafgen",
      "-o",
      devA,
      "-P",
      "1",
      "-Q",
      "--no-sock-mem",
      "-i",
      cfg,
    ],
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

async function tcp(nsA: string, nsB: string, ipB: string): Promise<{ gbps: number; retr: number }> {
  const srv = new Deno.Command("ip", {
    args: ["netns", "exec", nsB, "iperf3", "-s", "-1", "-B", ipB],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await sleep(500);
    const c = sh("ip", ["netns", "exec", nsA, "iperf3", "-c", ipB, "-t", `${SECS}`, "-J"], 60000);
    if (!c.ok) throw new Error(`iperf3: ${c.out} ${c.err}`);
    const j = JSON.parse(c.out);
    return { gbps: j.end.sum_received.bits_per_second / 1e9, retr: j.end.sum_sent.retransmits };
  } finally {
    try {
      srv.kill("SIGKILL");
    } catch { /* done */ }
    await srv.status;
  }
}

const nsA = `${TAG}A`, nsB = `${TAG}B`, nsS = `${TAG}S`;
const a = `${TAG}a`, r = `${TAG}r`, rb = `${TAG}x`, b = `${TAG}b`, t = `${TAG}t`;
const ipA = "10.97.0.1", ipB = "10.97.0.2";
let runDir = "";

function netns(ns: string) {
  ip("netns", "add", ns);
  sh("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
  sh("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
  ip("-n", ns, "link", "set", "lo", "up");
}

async function teardown() {
  if (runDir) {
    for (const x of listAttachments(undefined, { runDir })) {
      await detachInterface(x.name, { runDir }).catch(() => {});
    }
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
    runDir = "";
  }
  for (const ns of [nsA, nsB, nsS]) sh("ip", ["netns", "del", ns]);
  for (const l of [r, rb]) sh("ip", ["link", "del", l]);
}

async function setup(topo: string) {
  netns(nsA);
  netns(nsB);
  ip("link", "add", r, "type", "veth", "peer", "name", a);
  ip("link", "set", a, "netns", nsA);
  ip("-n", nsA, "addr", "add", `${ipA}/24`, "dev", a);
  ip("-n", nsA, "link", "set", a, "up");
  if (topo !== "vale-tap") {
    ip("link", "add", rb, "type", "veth", "peer", "name", b);
    ip("link", "set", b, "netns", nsB);
    ip("-n", nsB, "addr", "add", `${ipB}/24`, "dev", b);
    ip("-n", nsB, "link", "set", b, "up");
  }
  if (topo === "linux-bridge") {
    netns(nsS);
    ip("link", "set", r, "netns", nsS);
    ip("link", "set", rb, "netns", nsS);
    ip("-n", nsS, "link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0");
    for (const d of [r, rb]) {
      ip("-n", nsS, "link", "set", d, "master", "br0");
      ip("-n", nsS, "link", "set", d, "up");
    }
    ip("-n", nsS, "link", "set", "br0", "up");
    return;
  }
  runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-kp-" });
  const slots = Number(values.slots);
  ip("link", "set", r, "up");
  await attachInterface(`vale0:${r}`, { runDir, slots });
  if (topo === "vale-tap") {
    await attachInterface(`vale0:tap:${t}`, { runDir, netns: nsB, slots });
    ip("-n", nsB, "addr", "add", `${ipB}/24`, "dev", t);
  } else {
    ip("link", "set", rb, "up");
    await attachInterface(`vale0:${rb}`, { runDir, slots });
  }
}

const rows: Row[] = [];
const topos = (values.only ?? "vale-tap,vale-veth,linux-bridge").split(",");
console.log(`load average before: ${load()}`);
try {
  for (const topo of topos) {
    await setup(topo);
    try {
      const devB = topo === "vale-tap" ? t : b;
      const ping = sh("ip", ["netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-q", ipB]);
      if (!/ 0% packet loss/.test(ping.out)) throw new Error(`${topo}: no ping: ${ping.out}`);
      const method = runDir
        ? listAttachments(undefined, { runDir }).map((x) => `${x.port}:${x.mode}`).join(", ")
        : "";
      for (const dir of ["A->B", "B->A"] as const) {
        const [txNs, txDev, rxNs, rxDev] = dir === "A->B"
          ? [nsA, a, nsB, devB]
          : [nsB, devB, nsA, a];
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
            `${topo.padEnd(13)} ${dir} ${String(size).padStart(5)} B  ${m.mpps.toFixed(3)} Mpps  ` +
              `${m.gbps.toFixed(2)} Gbit/s  (trafgen offered ${m.offered.toFixed(3)} Mpps)`,
          );
        }
      }
      const c = await tcp(nsA, nsB, ipB);
      rows.push({ topo, dir: "A->B", size: "tcp", gbps: c.gbps, note: `retransmits ${c.retr}` });
      console.log(
        `${topo.padEnd(13)} A->B   TCP  ${
          c.gbps.toFixed(2)
        } Gbit/s (retransmits ${c.retr})  ${method}`,
      );
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
