// Rows of the side-by-side table for the kernel paths (bench/kernel_paths.ts does the
// work): two network namespaces joined through vale0 by veths (AF_PACKET with
// virtio-net headers), by TAPs with headers and offloads, by the same without headers
// (MTU-sized frames), and by a Linux bridge, measured in the same run.
//
// Per run: 1514-byte frames A -> B (trafgen or bench/c/tx_ring; the row's rate), then
// iperf3 A -> B: TCP 1 stream, TCP 4 streams, UDP 1472-byte datagrams, each with the
// machine's busy cores over its window (kernel work included: the forwarding is mostly
// kernel time), reported as Gbit/s and cores per Gbit/s in the metrics table.
// Never asserted anywhere: the numbers depend on the machine and its load.

import { registerRow, type RowContext } from "./rows.ts";
import type { Metric, MetricMeasurement } from "./report.ts";
import { which } from "./proc.ts";
import {
  blast,
  configure,
  devices,
  ipB,
  iperf,
  nsA,
  nsB,
  setup,
  teardown,
  type Topo,
  withCpu,
} from "./kernel_paths.ts";

function available(): Promise<true | string> {
  if (Deno.uid() !== 0) return Promise.resolve("needs root (namespaces, TAPs, AF_PACKET)");
  if (!which("ip")) return Promise.resolve("iproute2 is not installed");
  if (!which("iperf3")) return Promise.resolve("iperf3 is not installed (scripts/install-deps.sh)");
  return Promise.resolve(true);
}

const n = (name: string, value: number): Metric => ({ name, value, unit: "n" });

async function measure(topo: Topo, seconds: number, ctx: RowContext): Promise<MetricMeasurement> {
  configure(seconds);
  await setup(topo);
  try {
    const { devA, devB } = devices(topo);
    const f = await blast(nsA, devA, nsB, devB, 1514);
    const metrics: Metric[] = [];
    const notes: string[] = [];
    for (
      const [what, streams, udp] of [["TCP x1", 1, 0], ["TCP x4", 4, 0], [
        "UDP 1472",
        1,
        1472,
      ]] as const
    ) {
      const { r, cores } = await withCpu(() => iperf(nsA, nsB, ipB, streams, udp));
      // integers in the table: Mbit/s, and thousandths of a core per Gbit/s
      metrics.push(
        n(`${what} Mbit/s`, r.gbps * 1000),
        n(`${what} CPU per Gbit/s (millicores)`, (cores / r.gbps) * 1000),
      );
      notes.push(`${what}: ${udp ? `lost ${r.lost}` : `retransmits ${r.retr}`}`);
      ctx.log(`  ${topo} ${what}: ${r.gbps.toFixed(2)} Gbit/s, ${cores.toFixed(2)} cores busy`);
    }
    return {
      pps: f.mpps * 1e6,
      bps: f.gbps * 1e9,
      cpu: 0,
      secs: seconds,
      notes: [`1514 B frames offered ${f.offered.toFixed(3)} Mpps`, ...notes],
      metrics,
    };
  } finally {
    await teardown();
  }
}

const ROWS: [string, "vale" | "peer", Topo, string][] = [
  [
    "kernel: vale0, veths (AF_PACKET, vnet hdr)",
    "vale",
    "vale-veth",
    "namespaces on veths, root ends attached by vale-ctl -a (AF_PACKET with 12-byte " +
    "virtio-net headers: GSO super-frames and partial checksums kept; the kernel fast path " +
    "hands learned unicast frames from veth to veth)",
  ],
  [
    "kernel: vale0, veths (no fast path)",
    "vale",
    "vale-veth-nofast",
    "as the veth row with --no-kfast: every frame through the forwarders (three copies)",
  ],
  [
    "kernel: vale0, TAPs (vnet hdr)",
    "vale",
    "vale-tap",
    "namespaces on TAPs made by vale0:tap:NAME (IFF_VNET_HDR, TSO/USO/checksum offloads)",
  ],
  [
    "kernel: vale0, veths (no hdr)",
    "vale",
    "vale-veth-nohdr",
    "as the veth row with --vnet-hdr 0: AF_XDP, MTU-sized frames (the path before headers)",
  ],
  [
    "kernel: vale0, TAPs (no hdr)",
    "vale",
    "vale-tap-nohdr",
    "as the TAP row with --vnet-hdr 0: offloads off, MTU-sized frames",
  ],
  [
    "kernel: Linux bridge, veths",
    "peer",
    "linux-bridge",
    "the same namespaces on veths to a Linux bridge (br0 in its own namespace)",
  ],
];

for (const [name, kind, topo, description] of ROWS) {
  registerRow({
    name,
    kind,
    description: `${description}; 1514 B frames A -> B, then iperf3 TCP x1, x4, UDP 1472 B ` +
      `with machine CPU per Gbit/s`,
    sizes: [1514],
    available,
    run: (_size, seconds, ctx) => measure(topo, seconds, ctx),
  });
}
