// Starts the benchmark's private Open vSwitch with DPDK (bench/peers/ovs_dpdk.ts:
// ovsdb-server, ovs-vswitchd-dpdk in its own namespace, a netdev bridge with
// two dpdkvhostuser ports) as the OVS-DPDK row does, prints one JSON line with
// where everything is, and waits: for Ctrl-C/SIGTERM (the benchmark's cleanup
// runs), or SIGKILL (the next benchmark run must remove the leftovers), or
// `seconds` (then it cleans up and exits 0). Used by tests/ovs_dpdk_test.ts.
//
//   deno run -A tests/helpers/ovs_dpdk_driver.ts [seconds]

import { Cleanup, ownPrefix } from "../../bench/cleanup.ts";
import { sleep } from "../../bench/proc.ts";
import type { RowContext } from "../../bench/rows.ts";
import { addVhostPorts, startPrivateOvs } from "../../bench/peers/ovs_dpdk.ts";
import { findOvsDpdk } from "../../scripts/peers/ovs_dpdk.ts";

const seconds = Number(Deno.args[0] ?? 60);
const log = (m: string) => console.error(m);
const cleanup = new Cleanup();
cleanup.installSignalHandlers(log);
try {
  const ovs = findOvsDpdk();
  if (typeof ovs === "string") throw new Error(ovs);
  const tmpDir = Deno.makeTempDirSync({ prefix: ownPrefix() });
  cleanup.add(`remove ${tmpDir}`, () => Deno.removeSync(tmpDir, { recursive: true }));
  const ctx: RowContext = {
    cleanup,
    root: new URL("../..", import.meta.url).pathname.replace(/\/$/, ""),
    binDir: "",
    tmpDir,
    prefix: ownPrefix(),
    warmup: 0,
    cpus: navigator.hardwareConcurrency,
    options: {},
    log,
    verbose: false,
  };
  const tag = "ovst";
  const o = await startPrivateOvs(ctx, ovs, tag, 0);
  const sockets = await addVhostPorts(o);
  console.log(JSON.stringify({
    tmpDir,
    dir: o.dir,
    ns: o.ns.name,
    dpdkPrefix: o.ns.name, // the namespace and DPDK's file prefix have the same name
    pids: [o.ovsdb.pid, o.vswitchd.pid],
    sockets,
  }));
  await sleep(seconds * 1000);
} catch (e) {
  log(`ovs_dpdk_driver: ${e instanceof Error ? e.message : e}`);
  await cleanup.runAll();
  Deno.exit(1);
}
await cleanup.runAll();
cleanup.removeSignalHandlers();
