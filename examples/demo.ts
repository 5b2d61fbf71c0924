// The demo `npm start` runs: two ports on switch "valedemo", one process
// sending 60-byte frames to another through the learning bridge, and the rate.
//
//   deno run -A examples/demo.ts [--count N] [--size BYTES]
import { parseArgs } from "node:util";
import { listSwitches } from "../lib/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string", default: "30000000" },
    size: { type: "string", default: "60" },
  },
});
const root = new URL("..", import.meta.url).pathname;
const pktgen = `${root}bin/pkt-gen`;
const count = Number(values.count), size = Number(values.size);

console.log(`vale demo: switch valedemo, ports a and b, ${count} frames of ${size} bytes a -> b\n`);
// the receiver: its own process, exits after 1 s without traffic (-W)
const rx = new Deno.Command(pktgen, {
  args: ["-i", "valedemo:b", "-f", "rx", "-W"],
  stdout: "piped",
  stderr: "null",
}).spawn();
// wait until the receiver's port exists
for (let i = 0; i < 100 && !listSwitches().includes("valedemo"); i++) {
  await new Promise((r) => setTimeout(r, 50));
}
const tx = await new Deno.Command(pktgen, {
  args: ["-i", "valedemo:a", "-f", "tx", "-n", String(count), "-l", String(size)],
  stdout: "piped",
  stderr: "null",
}).output();
const rxOut = new TextDecoder().decode((await rx.output()).stdout);
const txOut = new TextDecoder().decode(tx.stdout);
console.log("sender:   " + txOut.trim().split("\n").join("\n          "));
console.log("receiver: " + rxOut.trim().split("\n").join("\n          "));
const m = rxOut.match(/Speed: ([\d.]+) Mpps/);
if (!tx.success || !m) {
  console.error("\nvale demo: something went wrong (see above)");
  Deno.exit(1);
}
console.log(
  `\n=> ${m[1]} Mpps of ${size}-byte frames from one process to another through the vale switch` +
    " (learning bridge, forwarding in the sender, no kernel module).",
);
const got = Number(rxOut.match(/Received (\d+) packets/)?.[1] ?? 0);
if (got < count) {
  console.log(
    `   The sender was faster than the receiver: ${count - got} frames found its ring full` +
      " and were dropped — each one counted by the switch (ring_full).",
  );
}
console.log("   Next: bin/vale-ctl -l, bin/pkt-gen --help, npm test");
