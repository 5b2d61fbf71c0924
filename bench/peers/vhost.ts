// Rows with vhost-user front-ends (DPDK virtio-user in dpdk-testpmd, no
// hugepages), txonly on one socket, rxonly on the other, each testpmd on its
// own CPU:
//
//   "vale vhost-user ports"  the two sockets are vhost-user ports of one vale
//                            switch (`vale-ctl -a valeX:vhost:SOCK`, a
//                            forwarder process each);
//   "DPDK vhost PMD pair"    the same two front-ends joined by a third
//                            dpdk-testpmd with two net_vhost ports in io mode
//                            (no switching: port 0 -> port 1).
//
// The rate is the mean of the receiving testpmd's per-second `Rx-pps` lines
// after the first few, as in the memif row.

import { type Child, type CpuUse, CpuWindow, run, which } from "../proc.ts";
import { type Measurement, registerRow, type RowContext } from "../rows.ts";
import { cpusFor, deadlineMs, spawn } from "./common.ts";
import { privateRunDir } from "../vale_common.ts";

/** testpmd's EAL memory per process, MiB (no hugepages: ordinary memory). */
const MEM_MB = 1024;

function memAvailableMb(): number {
  try {
    const m = Deno.readTextFileSync("/proc/meminfo").match(/^MemAvailable:\s+(\d+)/m);
    return m ? Number(m[1]) / 1024 : Infinity;
  } catch {
    return Infinity;
  }
}

function testpmd(ctx: RowContext, tag: string, cpu: number, vdevs: string[], fwd: string[]) {
  return [
    "dpdk-testpmd",
    "--lcores",
    `0@${cpu},1@${cpu}`,
    "--no-pci",
    "--no-huge",
    "-m",
    String(MEM_MB),
    "--file-prefix",
    `${ctx.prefix}${tag}`,
    "--log-level",
    "lib.eal:warning",
    ...vdevs.map((v) => `--vdev=${v}`),
    "--",
    ...fwd,
    "--auto-start",
    "--stats-period",
    "1",
    "--nb-cores=1",
    "--total-num-mbufs=16384",
  ];
}

function removeRuntimeDir(ctx: RowContext, tag: string): void {
  for (
    const base of ["/var/run/dpdk", `${Deno.env.get("XDG_RUNTIME_DIR") ?? "/nonexistent"}/dpdk`]
  ) {
    try {
      Deno.removeSync(`${base}/${ctx.prefix}${tag}`, { recursive: true });
    } catch { /* not there */ }
  }
}

/** The mean of `rx`'s Rx-pps lines over `seconds`, after warm-up; CPU of `pids`. */
async function rxRate(
  rx: Child,
  others: Child[],
  seconds: number,
  ctx: RowContext,
  size: number,
  extraPids: () => number[],
): Promise<Measurement> {
  const skip = Math.max(2, Math.ceil(ctx.warmup));
  const n = Math.max(1, Math.round(seconds));
  const win = new CpuWindow();
  const rates: number[] = [];
  let seen = 0;
  const w = await new Promise<CpuUse>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`testpmd: fewer than ${n} Rx-pps lines in time${rx.tail()}`)),
      deadlineMs(seconds + skip, ctx, 40),
    );
    const off = rx.onLine((line) => {
      const m = line.match(/Rx-pps:\s+(\d+)/);
      if (!m) return;
      const pps = Number(m[1]);
      if (seen === 0 && pps === 0) return;
      seen++;
      if (seen === skip) win.open([rx.pid, ...others.map((c) => c.pid), ...extraPids()]);
      else if (seen > skip) rates.push(pps);
      if (rates.length === n) {
        clearTimeout(timer);
        off();
        resolve(win.close());
      }
    });
    for (const c of [rx, ...others]) {
      c.status.then(() => reject(new Error(`a testpmd exited early${c.tail()}`)));
    }
  });
  const pps = rates.reduce((a, b) => a + b, 0) / rates.length;
  return {
    pps,
    bps: pps * size * 8,
    cpu: w.cpu,
    machineCpu: w.machineCpu,
    otherCpu: w.otherCpu,
    secs: w.secs,
    frames: Math.round(pps * w.secs),
    notes: [`mean of ${n} Rx-pps lines after ${skip}`],
  };
}

function available(ctx: RowContext, processes: number): Promise<true | string> {
  if (!which("dpdk-testpmd")) {
    return Promise.resolve("dpdk-testpmd is not installed (Debian: dpdk-dev)");
  }
  if (ctx.cpus < 2) return Promise.resolve("needs two CPUs");
  if (memAvailableMb() < processes * MEM_MB + 256) {
    return Promise.resolve(`needs ${processes * MEM_MB + 256} MiB of free memory`);
  }
  return Promise.resolve(true);
}

/** Forwarder pids of the vale attachments (their CPU counts for the row). */
function forwarderPids(runDir: string): number[] {
  const pids: number[] = [];
  try {
    for (const e of Deno.readDirSync(`${runDir}/.attach/valevh`)) {
      if (!e.name.endsWith(".state.json")) continue;
      const st = JSON.parse(Deno.readTextFileSync(`${runDir}/.attach/valevh/${e.name}`));
      if (st.pid) pids.push(st.pid);
    }
  } catch { /* none */ }
  return pids;
}

async function measureVale(size: number, seconds: number, ctx: RowContext): Promise<Measurement> {
  const cpu = cpusFor(ctx);
  const rd = privateRunDir(ctx, "vhost");
  const ctl = `${ctx.root}/bin/vale-ctl`;
  const env = { VALE_RUN_DIR: rd };
  const sock = (s: string) => `${ctx.tmpDir}/${s}${size}.sock`;
  for (const s of ["a", "b"]) {
    await run([ctl, "-a", `valevh:vhost:${sock(s)}`], { env });
    ctx.cleanup.add(
      `detach valevh:${s}${size}.sock`,
      () => run([ctl, "-d", `valevh:${s}${size}.sock`], { env }).then(() => {}),
    );
  }
  const tags = [`vrx${size}`, `vtx${size}`];
  for (const t of tags) ctx.cleanup.add(`remove DPDK dir ${t}`, () => removeRuntimeDir(ctx, t));
  const rx = spawn(
    ctx,
    "testpmd-rx",
    testpmd(ctx, tags[0], cpu.rx, [`net_virtio_user0,path=${sock("b")}`], [
      "--forward-mode=rxonly",
    ]),
  );
  const tx = spawn(
    ctx,
    "testpmd-tx",
    testpmd(ctx, tags[1], cpu.tx, [`net_virtio_user0,path=${sock("a")}`], [
      "--forward-mode=txonly",
      `--txpkts=${size}`,
    ]),
  );
  try {
    return await rxRate(rx, [tx], seconds, ctx, size, () => forwarderPids(rd));
  } finally {
    await tx.stop("SIGINT", 5000);
    await rx.stop("SIGINT", 5000);
  }
}

async function measurePmd(size: number, seconds: number, ctx: RowContext): Promise<Measurement> {
  const cpu = cpusFor(ctx);
  const sock = (s: string) => `${ctx.tmpDir}/p${s}${size}.sock`;
  const tags = [`prx${size}`, `ptx${size}`, `pmid${size}`];
  for (const t of tags) ctx.cleanup.add(`remove DPDK dir ${t}`, () => removeRuntimeDir(ctx, t));
  // the middle: two vhost PMD ports (servers), io forwarding 0 <-> 1
  const mid = spawn(
    ctx,
    "testpmd-vhost",
    testpmd(
      ctx,
      tags[2],
      cpu.rx,
      [`net_vhost0,iface=${sock("a")},queues=1`, `net_vhost1,iface=${sock("b")},queues=1`],
      ["--forward-mode=io"],
    ),
  );
  await mid.waitLine(/start packet forwarding|Press enter/i, 30_000);
  const rx = spawn(
    ctx,
    "testpmd-rx",
    testpmd(ctx, tags[0], cpu.rx, [`net_virtio_user0,path=${sock("b")}`], [
      "--forward-mode=rxonly",
    ]),
  );
  const tx = spawn(
    ctx,
    "testpmd-tx",
    testpmd(ctx, tags[1], cpu.tx, [`net_virtio_user0,path=${sock("a")}`], [
      "--forward-mode=txonly",
      `--txpkts=${size}`,
    ]),
  );
  try {
    return await rxRate(rx, [tx, mid], seconds, ctx, size, () => []);
  } finally {
    await tx.stop("SIGINT", 5000);
    await rx.stop("SIGINT", 5000);
    await mid.stop("SIGINT", 5000);
  }
}

registerRow({
  name: "vale vhost-user ports",
  kind: "vale",
  description: "dpdk-testpmd txonly → virtio-user → vale vhost-user port → switch → vhost-user " +
    "port → virtio-user → dpdk-testpmd rxonly, --no-huge",
  sizes: [60, 1514],
  available: (ctx) => available(ctx, 2),
  run: measureVale,
});

registerRow({
  name: "DPDK vhost PMD pair",
  kind: "peer",
  description: "the same two virtio-user front-ends joined by a dpdk-testpmd with two net_vhost " +
    "ports in io mode (no switching), --no-huge",
  sizes: [60, 1514],
  available: (ctx) => available(ctx, 3),
  run: measurePmd,
});

// ---------------------------------------------------------------- Open vSwitch with DPDK

/**
 * Where Debian's openvswitch-switch-dpdk (with openvswitch-switch and -common)
 * is: installed (root "") or unpacked with `dpkg-deb -x` into
 * $VBENCH_OVS_DPDK_ROOT (nothing installed on the machine).
 */
function ovsDpdk(): Record<string, string> | string {
  const root = Deno.env.get("VBENCH_OVS_DPDK_ROOT") ?? "";
  const p = {
    vswitchd: `${root}/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk`,
    ovsdb: `${root}/usr/sbin/ovsdb-server`,
    tool: `${root}/usr/bin/ovsdb-tool`,
    vsctl: `${root}/usr/bin/ovs-vsctl`,
    ofctl: `${root}/usr/bin/ovs-ofctl`,
    schema: `${root}/usr/share/openvswitch/vswitch.ovsschema`,
  };
  for (const f of Object.values(p)) {
    try {
      Deno.statSync(f);
    } catch {
      return `openvswitch-switch-dpdk is not installed (${f} missing; or set ` +
        "VBENCH_OVS_DPDK_ROOT to a dpkg-deb -x of openvswitch-switch-dpdk, -switch and -common)";
    }
  }
  return p;
}

/** An interface of that name in our network namespace. */
function linkExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

async function measureOvs(size: number, seconds: number, ctx: RowContext): Promise<Measurement> {
  const p = ovsDpdk() as Record<string, string>;
  const cpu = cpusFor(ctx);
  const dir = Deno.makeTempDirSync({ dir: ctx.tmpDir, prefix: "ovsdpdk-" });
  ctx.cleanup.add(`remove ${dir}`, () => Deno.removeSync(dir, { recursive: true }));
  const env = { OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir, OVS_SYSCONFDIR: dir };
  const sock = `${dir}/db.sock`;
  // the netdev datapath makes TAPs in our namespace: the bridge's (named after it, ours
  // alone) and "ovs-netdev" (removed at the end unless it was there before)
  const br = `vb${Deno.pid % 100000}`;
  const hadNetdev = linkExists("ovs-netdev");
  ctx.cleanup.add(`remove the TAPs of OVS's netdev datapath`, () => {
    for (const l of [br, ...(hadNetdev ? [] : ["ovs-netdev"])]) {
      if (linkExists(l)) new Deno.Command("ip", { args: ["link", "del", l] }).outputSync();
    }
  });
  await run([p.tool, "create", `${dir}/conf.db`, p.schema]);
  const ovsdb = spawn(ctx, "ovsdb-server", [
    p.ovsdb,
    `${dir}/conf.db`,
    `--remote=punix:${sock}`,
    `--pidfile=${dir}/ovsdb.pid`,
    `--log-file=${dir}/ovsdb.log`,
  ], env);
  const vsctl = (...args: string[]) =>
    run([p.vsctl, `--db=unix:${sock}`, "--timeout=30", ...args], { env });
  const tags = [`orx${size}`, `otx${size}`, `ovs${size}`];
  for (const t of tags) ctx.cleanup.add(`remove DPDK dir ${t}`, () => removeRuntimeDir(ctx, t));
  let vswitchd: Child | undefined, rx: Child | undefined, tx: Child | undefined;
  try {
    for (let i = 0; i < 100 && (await vsctl("--no-wait", "init").catch(() => null)) === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // no hugepages: OVS adds --in-memory unless --legacy-mem is given, and --no-huge needs
    // legacy memory; per-port pools (the shared one asks for 262144 mbufs)
    await vsctl(
      "--no-wait",
      "set",
      "Open_vSwitch",
      ".",
      "other_config:dpdk-init=true",
      `other_config:dpdk-extra=--no-huge --legacy-mem -m 2048 --no-pci --file-prefix ` +
        `${ctx.prefix}${tags[2]}`,
      `other_config:pmd-cpu-mask=0x${(1 << cpu.rx).toString(16)}`,
      "other_config:per-port-memory=true",
    );
    vswitchd = spawn(ctx, "ovs-vswitchd", [
      p.vswitchd,
      `unix:${sock}`,
      `--pidfile=${dir}/vswitchd.pid`,
      `--log-file=${dir}/vswitchd.log`,
    ], env);
    await vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev");
    for (const [i, n] of [[1, "vh0"], [2, "vh1"]] as const) {
      await vsctl(
        "add-port",
        br,
        n,
        "--",
        "set",
        "Interface",
        n,
        "type=dpdkvhostuser",
        `ofport_request=${i}`,
      );
    }
    await run([p.ofctl, "del-flows", `unix:${dir}/${br}.mgmt`], { env });
    await run([p.ofctl, "add-flow", `unix:${dir}/${br}.mgmt`, "in_port=1,actions=output:2"], {
      env,
    });
    rx = spawn(
      ctx,
      "testpmd-rx",
      testpmd(ctx, tags[0], cpu.rx, [`net_virtio_user0,path=${dir}/vh1`], [
        "--forward-mode=rxonly",
      ]),
    );
    tx = spawn(
      ctx,
      "testpmd-tx",
      testpmd(ctx, tags[1], cpu.tx, [`net_virtio_user0,path=${dir}/vh0`], [
        "--forward-mode=txonly",
        `--txpkts=${size}`,
      ]),
    );
    return await rxRate(rx, [tx, vswitchd], seconds, ctx, size, () => [ovsdb.pid]);
  } finally {
    await tx?.stop("SIGINT", 5000);
    await rx?.stop("SIGINT", 5000);
    await vsctl("--if-exists", "del-br", br).catch(() => {});
    await vswitchd?.stop("SIGTERM", 5000);
    await ovsdb.stop("SIGTERM", 3000);
  }
}

registerRow({
  name: "OVS-DPDK vhost-user",
  kind: "peer",
  description: "the same two virtio-user front-ends on two dpdkvhostuser ports of Open vSwitch " +
    "with DPDK (netdev datapath, one PMD thread, a static in_port flow), --no-huge --legacy-mem",
  sizes: [60, 1514],
  available(ctx) {
    const p = ovsDpdk();
    if (typeof p === "string") return Promise.resolve(p);
    return available(ctx, 4);
  },
  run: measureOvs,
});
