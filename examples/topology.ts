// A test network in a few lines (docs/topology.md): two switches joined by a
// bridge, four hosts (network namespaces; two by veth, two by TAP), all pairs
// pinged, TCP across the bridge, the switch ports' counters — and everything
// gone when the script ends, fails or is interrupted (Ctrl-C). Root only.
//
//   deno run -A examples/topology.ts [--file examples/topology.json] [--bytes N]
import { parseArgs } from "node:util";
import { Topology } from "../lib/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { file: { type: "string" }, bytes: { type: "string", default: "50000000" } },
});

let topo: Topology;
if (values.file) {
  topo = await Topology.load(values.file); // the same topology as JSON (vale topo up FILE)
} else {
  topo = new Topology("ex", { staticArp: true });
  const s1 = topo.addSwitch("s1"), s2 = topo.addSwitch("s2");
  for (let i = 1; i <= 4; i++) topo.addHost(`h${i}`, { ip: `10.0.0.${i}/24` });
  topo.addLink("h1", s1).addLink("h2", s1, { kind: "tap" });
  topo.addLink("h3", s2).addLink("h4", s2, { kind: "tap" });
  topo.addLink(s1, s2);
}

await using net = await topo.up({ log: (m) => console.log(`  ${m}`) });
console.log(`topology ${net.name} is up\n`);

console.log((await net.pingAll()).text);

const [first, last] = [[...net.hosts.keys()][0], [...net.hosts.keys()].at(-1)!];
const t = await net.tcp(first, last, { bytes: Number(values.bytes) });
console.log(
  `TCP ${first} -> ${last}: ${t.received} of ${t.sent} bytes` +
    `${t.firstBadByte < 0 ? ", intact" : `, first bad byte at ${t.firstBadByte}`}` +
    ` (${(t.bitsPerSecond / 1e9).toFixed(2)} Gbit/s)\n`,
);

for (const [sw, ports] of Object.entries(net.snapshot())) {
  for (const [peer, c] of Object.entries(ports)) {
    console.log(
      `${sw} port to ${peer.padEnd(4)} tx ${String(c.tx_packets).padStart(8)} ` +
        `rx ${String(c.rx_packets).padStart(8)} drops ${c.drops.ring_full + c.drops.no_dest}`,
    );
  }
}
// leaving the scope tears it all down
