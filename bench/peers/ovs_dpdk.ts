// Row "OVS-DPDK vhost-user": the vhost rows' two virtio-user front-ends
// (dpdk-testpmd txonly and rxonly, --no-huge; vhost.ts) on two
// dpdkvhostuser ports of Open vSwitch with DPDK (netdev datapath, one PMD
// thread, a static in_port flow).
//
// OVS is Debian's openvswitch-switch-dpdk unpacked, not installed, by
// scripts/peers/ovs_dpdk.ts into build/peers/ovs-dpdk/ ($VBENCH_OVS_DPDK_ROOT,
// a tree unpacked by hand, overrides it; the installed package is the last
// resort). It runs privately: its own run directory under the run's temp dir
// (database, sockets, pid files, logs: OVS_RUNDIR, OVS_DBDIR, OVS_LOGDIR and
// OVS_SYSCONFDIR point there, and every path is also given on the command
// line), ovs-vswitchd in its own network namespace (the netdev datapath's
// TAPs live and die there), nothing of the system's /etc/openvswitch or
// /var/run/openvswitch used. Every process carries VBENCH_OWNER and every
// name the run's prefix, so the row's cleanup stops it (end of row, error,
// Ctrl-C) and the next run removes what a SIGKILLed run left.

import { type Child, run, which } from "../proc.ts";
import { type Measurement, registerRow, type RowContext } from "../rows.ts";
import { cpusFor, Netns, spawn, waitForPath } from "./common.ts";
import { frontEnds } from "./vhost.ts";
import { removeRuntimeDir, rxRate, testpmdAvailable } from "./testpmd.ts";
import { findOvsDpdk, type OvsDpdk } from "../../scripts/peers/ovs_dpdk.ts";

/** EAL memory of ovs-vswitchd-dpdk, MiB (no hugepages: ordinary memory). */
const OVS_MEM_MB = 2048;

/** A private ovsdb-server + ovs-vswitchd-dpdk with a netdev bridge "br0". */
export interface PrivateOvs {
  /** The run directory: conf.db, db.sock, *.pid, *.log, *.ctl, br0.mgmt, vhost-user sockets. */
  dir: string;
  ns: Netns;
  ovsdb: Child;
  vswitchd: Child;
  /** Environment of every OVS command (the private directories, the library path). */
  env: Record<string, string>;
  vsctl(...args: string[]): Promise<unknown>;
  ofctl(...args: string[]): Promise<unknown>;
}

/** The last lines of an OVS log of the run directory, for error messages. */
function logTail(file: string, n = 8): string {
  try {
    const lines = Deno.readTextFileSync(file).trimEnd().split("\n").slice(-n);
    return `\n  ${file}:\n  | ${lines.join("\n  | ")}`;
  } catch {
    return "";
  }
}

/** OVSes started by this process: each gets its own names (a disturbed run is measured again). */
let started = 0;

/**
 * Starts OVS in a run directory of its own under ctx.tmpDir, ovs-vswitchd in
 * a namespace of its own (`<prefix><tag>-<n>`), DPDK initialised without
 * hugepages with the file prefix `<prefix><tag>-<n>`, one PMD thread on
 * `pmdCpu`. Everything is registered in ctx.cleanup.
 */
export async function startPrivateOvs(
  ctx: RowContext,
  ovs: OvsDpdk,
  baseTag: string,
  pmdCpu: number,
): Promise<PrivateOvs> {
  const f = ovs.files;
  const tag = `${baseTag}-${++started}`;
  const dir = Deno.makeTempDirSync({ dir: ctx.tmpDir, prefix: "ovsdpdk-" });
  ctx.cleanup.add(`remove ${dir}`, () => Deno.removeSync(dir, { recursive: true }));
  ctx.cleanup.add(`remove DPDK dir ${tag}`, () => removeRuntimeDir(ctx, tag));
  const env: Record<string, string> = {
    ...ovs.env,
    OVS_RUNDIR: dir,
    OVS_LOGDIR: dir,
    OVS_DBDIR: dir,
    OVS_SYSCONFDIR: dir,
    OVS_PKGDATADIR: f.schema.replace(/\/[^/]*$/, ""),
  };
  const sock = `${dir}/db.sock`;
  const ns = await Netns.create(ctx, tag);
  await run([f.tool, "create", `${dir}/conf.db`, f.schema], { env });
  const ovsdb = spawn(ctx, "ovsdb-server", [
    f.ovsdb,
    `${dir}/conf.db`,
    `--remote=punix:${sock}`,
    `--unixctl=${dir}/ovsdb.ctl`,
    `--pidfile=${dir}/ovsdb.pid`,
    `--log-file=${dir}/ovsdb.log`,
  ], env);
  await waitForPath(sock, 10_000, () => ovsdb.tail() + logTail(`${dir}/ovsdb.log`));
  const vsctl = (...args: string[]) =>
    run([f.vsctl, `--db=unix:${sock}`, "--timeout=30", ...args], { env });
  const ofctl = (...args: string[]) => run([f.ofctl, ...args], { env });
  await vsctl("--no-wait", "init");
  // no hugepages: OVS adds --in-memory unless --legacy-mem is given, and --no-huge needs
  // legacy memory; per-port pools (the shared one asks for 262144 mbufs)
  await vsctl(
    "--no-wait",
    "set",
    "Open_vSwitch",
    ".",
    "other_config:dpdk-init=true",
    `other_config:dpdk-extra=--no-huge --legacy-mem -m ${OVS_MEM_MB} --no-pci --file-prefix ` +
      `${ctx.prefix}${tag}`,
    `other_config:pmd-cpu-mask=0x${(1 << pmdCpu).toString(16)}`,
    "other_config:per-port-memory=true",
  );
  const vswitchd = spawn(
    ctx,
    "ovs-vswitchd",
    ns.exec([
      f.vswitchd,
      `unix:${sock}`,
      `--unixctl=${dir}/vswitchd.ctl`,
      `--pidfile=${dir}/vswitchd.pid`,
      `--log-file=${dir}/vswitchd.log`,
    ]),
    env,
  );
  try {
    await vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev");
  } catch (e) {
    throw new Error(`${(e as Error).message}${vswitchd.tail()}${logTail(`${dir}/vswitchd.log`)}`);
  }
  return { dir, ns, ovsdb, vswitchd, env, vsctl, ofctl };
}

/** Stops a private OVS now (its cleanup steps would do it too, later). */
export async function stopPrivateOvs(o: PrivateOvs): Promise<void> {
  await o.vsctl("--if-exists", "del-br", "br0").catch(() => {});
  await o.vswitchd.stop("SIGTERM", 5000);
  await o.ovsdb.stop("SIGTERM", 3000);
}

/** Adds dpdkvhostuser ports vh0 (OpenFlow port 1) and vh1 (2) and the flow 1 → 2. */
export async function addVhostPorts(o: PrivateOvs): Promise<string[]> {
  for (const [i, n] of [[1, "vh0"], [2, "vh1"]] as const) {
    await o.vsctl(
      "add-port",
      "br0",
      n,
      "--",
      "set",
      "Interface",
      n,
      "type=dpdkvhostuser",
      `ofport_request=${i}`,
    );
  }
  const mgmt = `unix:${o.dir}/br0.mgmt`;
  await o.ofctl("del-flows", mgmt);
  await o.ofctl("add-flow", mgmt, "in_port=1,actions=output:2");
  return [`${o.dir}/vh0`, `${o.dir}/vh1`];
}

async function measureOvs(size: number, seconds: number, ctx: RowContext): Promise<Measurement> {
  const ovs = findOvsDpdk();
  if (typeof ovs === "string") throw new Error(ovs);
  const cpu = cpusFor(ctx);
  const tags = [`orx${size}`, `otx${size}`];
  for (const t of tags) ctx.cleanup.add(`remove DPDK dir ${t}`, () => removeRuntimeDir(ctx, t));
  const o = await startPrivateOvs(ctx, ovs, `ovs${size}`, cpu.rx);
  let rx: Child | undefined, tx: Child | undefined;
  try {
    const [vh0, vh1] = await addVhostPorts(o);
    ({ rx, tx } = frontEnds(ctx, size, cpu, tags, vh0, vh1));
    const m = await rxRate(rx, [tx, o.vswitchd], seconds, ctx, size, () => [o.ovsdb.pid]);
    m.notes = [...m.notes ?? [], `Open vSwitch ${ovs.ovsVersion ?? "?"} from ${ovs.source}`];
    return m;
  } finally {
    await tx?.stop("SIGINT", 5000);
    await rx?.stop("SIGINT", 5000);
    await stopPrivateOvs(o);
  }
}

/** Why the row cannot run here, or true. */
export function ovsDpdkAvailable(ctx: RowContext): Promise<true | string> {
  const ovs = findOvsDpdk();
  if (typeof ovs === "string") return Promise.resolve(ovs);
  if (Deno.uid() !== 0) {
    return Promise.resolve("needs root (ovs-vswitchd runs in a network namespace of its own)");
  }
  if (!which("ip")) return Promise.resolve("iproute2 is not installed");
  return testpmdAvailable(ctx, 4);
}

registerRow({
  name: "OVS-DPDK vhost-user",
  kind: "peer",
  description: "the same two virtio-user front-ends on two dpdkvhostuser ports of Open vSwitch " +
    "with DPDK (netdev datapath, one PMD thread, a static in_port flow), --no-huge --legacy-mem",
  sizes: [60, 1514],
  available: ovsDpdkAvailable,
  run: measureOvs,
});
