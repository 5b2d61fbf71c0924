// Row "OVS userspace (AF_XDP)": a private ovsdb-server + ovs-vswitchd (its
// own run directory, nothing of the system's OVS is used or touched), bridge
// with datapath_type=netdev, the two veth ends attached as AF_XDP ports, one
// PMD thread on the receiver's CPU, and static L2 flows (dl_dst → port, the
// OpenFlow counterpart of the Linux bridge's static fdb). trafgen sends from
// one namespace, bench/c/rx_mmap counts in another, as for the Linux rows.

import { run, which } from "../proc.ts";
import { registerRow, type RowContext } from "../rows.ts";
import { cpusFor, DST_MAC, Netns, spawn, SRC_MAC, vethPair, waitForPath } from "./common.ts";
import { linuxCheck, measureLinux, type Topology } from "./linux.ts";

let topo: Topology | undefined;

async function setup(ctx: RowContext): Promise<void> {
  const dir = Deno.makeTempDirSync({ dir: ctx.tmpDir, prefix: "ovs-" });
  ctx.cleanup.add(`remove ${dir}`, () => Deno.removeSync(dir, { recursive: true }));
  // Every OVS path (pid files, sockets, logs, the database) goes to our own dir.
  const env = { OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir, OVS_SYSCONFDIR: dir };
  const tx = await Netns.create(ctx, "ovs-tx");
  const rx = await Netns.create(ctx, "ovs-rx");
  const sw = await Netns.create(ctx, "ovs-sw");
  await vethPair(tx, "vs0", SRC_MAC, sw, "ps", "02:00:00:00:1a:00");
  await vethPair(rx, "vr0", DST_MAC, sw, "pr", "02:00:00:00:1b:00");

  const db = `${dir}/conf.db`;
  const sock = `${dir}/db.sock`;
  await run(["ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"]);
  const ovsdb = spawn(ctx, "ovsdb-server", [
    "ovsdb-server",
    db,
    `--remote=punix:${sock}`,
    `--unixctl=${dir}/ovsdb.ctl`,
    `--pidfile=${dir}/ovsdb.pid`,
    `--log-file=${dir}/ovsdb.log`,
  ], env);
  await waitForPath(sock, 10_000);
  const vsctl = (...args: string[]) =>
    run(["ovs-vsctl", `--db=unix:${sock}`, "--timeout=20", ...args], { env });
  await vsctl("--no-wait", "init");
  const cpu = cpusFor(ctx);
  await vsctl(
    "--no-wait",
    "set",
    "Open_vSwitch",
    ".",
    `other_config:pmd-cpu-mask=0x${(1 << cpu.rx).toString(16)}`,
  );
  const vswitchd = spawn(
    ctx,
    "ovs-vswitchd",
    sw.exec([
      "ovs-vswitchd",
      `unix:${sock}`,
      `--unixctl=${dir}/vswitchd.ctl`,
      `--pidfile=${dir}/vswitchd.pid`,
      `--log-file=${dir}/vswitchd.log`,
    ]),
    env,
  );
  await vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev");
  for (const p of ["ps", "pr"]) {
    await vsctl(
      "add-port",
      "br0",
      p,
      "--",
      "set",
      "interface",
      p,
      "type=afxdp",
      "options:xdp-mode=native",
    );
  }
  const ofctl = (...args: string[]) => run(["ovs-ofctl", ...args], { env });
  const mgmt = `unix:${dir}/br0.mgmt`;
  await waitForPath(`${dir}/br0.mgmt`, 10_000);
  await ofctl("del-flows", mgmt);
  await ofctl("add-flow", mgmt, `dl_dst=${DST_MAC},actions=output:pr`);
  await ofctl("add-flow", mgmt, `dl_dst=${SRC_MAC},actions=output:ps`);
  if (ovsdb.exited || vswitchd.exited) {
    throw new Error(`OVS exited during setup${vswitchd.tail()}${ovsdb.tail()}`);
  }
  topo = { tx, rx, switchPids: [vswitchd.pid] };
}

registerRow({
  name: "OVS userspace (AF_XDP)",
  kind: "peer",
  description: "Open vSwitch, userspace datapath (netdev), AF_XDP ports on the veth ends, " +
    "one PMD thread, static L2 flows; trafgen → OVS → PACKET_MMAP receiver",
  sizes: [60, 1514],
  available(ctx) {
    for (const p of ["ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovsdb-tool"]) {
      if (!which(p)) {
        return Promise.resolve(
          `${p} is not installed (Debian: openvswitch-switch; scripts/install-peers.sh --ovs)`,
        );
      }
    }
    try {
      Deno.statSync("/usr/share/openvswitch/vswitch.ovsschema");
    } catch {
      return Promise.resolve("/usr/share/openvswitch/vswitch.ovsschema is missing");
    }
    return Promise.resolve(linuxCheck(ctx, false));
  },
  setup,
  run(size, seconds, ctx) {
    if (!topo) throw new Error("OVS userspace (AF_XDP): not set up");
    return measureLinux(topo, size, seconds, ctx);
  },
});
