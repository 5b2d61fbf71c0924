// VMs in topologies (lib/topo/vm.ts): a QEMU TCG guest — vale's test guest,
// built by scripts/guest/prepare.ts, its paths passed as node options — on a
// vhost-user port of a switch, next to a network namespace on a veth. The VM
// and the host ping each other (pingAll includes the VM), TCP moves an exact
// byte count both ways, the ping frames are counted exactly on both ports,
// commands run in the guest over its console. QEMU is recorded in the state
// file and gone after every teardown: by an exception, by the next `up`
// after the owner was SIGKILLed, by SIGINT to the owner (a VM on a TAP
// link), and by `vale topo down` of a detached `vale topo up`. After each,
// no QEMU, socket, namespace, interface or switch file of the topology is
// left.
//
// Without root, QEMU or the guest image the cases are listed as ignored with
// the reason; the validation case runs anywhere.

import assert from "node:assert/strict";
import { alive } from "./helpers/procs.ts";
import { netSkipReason, testGroup } from "./helpers/machine.ts";
import {
  assertTopologyClean,
  procsWith,
  RunDirs,
  sh,
  waitLine as waitLineOf,
} from "./helpers/topo_check.ts";
import { Topology, TopologyError, type TopologySpec, validateTopology } from "../lib/mod.ts";
import { planTopology } from "../lib/topo/spec.ts";
import { tearDown } from "../lib/topo/lifecycle.ts";
import { guestAvailable, guestImage } from "./helpers/guest.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const VALE = `${ROOT}bin/vale`;
const TAG = `${Deno.pid % 100000}`;
/** Boot and commands under TCG on a loaded machine: generous bounds. */
const BOOT_MS = 60000;

const vtest = testGroup(
  "topology VM",
  netSkipReason([]) || (guestAvailable() ?? ""),
  () => runDirs.removeAll(),
);

/** One switch, h1 on a veth, vm1 (vale's test guest) on a vhost-user port (or a TAP). */
function spec(name: string, kind: "vhost" | "tap" = "vhost"): TopologySpec {
  const img = guestImage();
  return {
    name,
    staticArp: true,
    switches: { s1: {} },
    hosts: { h1: { ip: "10.79.0.1/24" } },
    vms: {
      vm1: {
        kernel: img.kernel,
        initrd: img.initramfs,
        init: "vale",
        ip: "10.79.0.2/24",
        memoryMiB: 256,
        bootTimeoutMs: BOOT_MS,
      },
    },
    links: [{ host: "h1", switch: "s1" }, { vm: "vm1", switch: "s1", kind }],
  };
}

const assertClean = assertTopologyClean;

const runDirs = new RunDirs("vale-tvm-");
const freshRunDir = () => runDirs.fresh();

const waitLine = (child: Deno.ChildProcess, what: string, ms = 120000) =>
  waitLineOf(child, what, ms);

/** A script that brings `spec` up (owned), pings all, prints "up QEMU-PID", then waits. */
async function ownerScript(rd: string): Promise<string> {
  const script = `${rd}/own.ts`;
  await Deno.writeTextFile(
    script,
    `import { Topology } from "${ROOT}lib/mod.ts";
const net = await Topology.from(JSON.parse(Deno.args[0])).up({ runDir: Deno.args[1] });
const p = await net.pingAll();
console.log(p.text.replaceAll("\\n", " | "));
console.log("up", net.vm("vm1").pid);
setInterval(() => {}, 1000);`,
  );
  return script;
}

function startOwner(script: string, s: TopologySpec, rd: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", "--config", `${ROOT}deno.json`, script, JSON.stringify(s), rd],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

// ---------------------------------------------------------------- validation

Deno.test("topology VM: the schema's VM fields are validated, names planned", () => {
  const base = (): TopologySpec => ({
    name: "t1",
    switches: { s1: {} },
    hosts: {},
    vms: { vm1: { kernel: "/k", initrd: "/i", ip: "10.0.0.2/24", init: "vale" } },
    links: [{ vm: "vm1", switch: "s1" }],
  });
  const bad = (mut: (s: TopologySpec & Record<string, unknown>) => void, path: string) => {
    const s = base() as TopologySpec & Record<string, unknown>;
    mut(s);
    assert.throws(() => validateTopology(s), (e: unknown) => {
      assert.ok(e instanceof TopologyError, String(e));
      assert.equal(e.path, path, e.message);
      return true;
    });
  };
  type O = Record<string, unknown>;
  const vmOf = (s: TopologySpec) => s.vms!.vm1 as unknown as O;
  const linkOf = (s: TopologySpec) => s.links[0] as unknown as O;
  validateTopology(base());
  bad((s) => (s.vms!.vm1.kernel = "vmlinuz"), "vms.vm1.kernel");
  bad((s) => delete vmOf(s).kernel, "vms.vm1.kernel");
  bad((s) => (vmOf(s).memoryMiB = 8), "vms.vm1.memoryMiB");
  bad((s) => (vmOf(s).init = "systemd"), "vms.vm1.init");
  bad((s) => (vmOf(s).colour = 1), "vms.vm1.colour");
  bad((s) => (vmOf(s).ip = "10.0.0.300/24"), "vms.vm1.ip");
  bad((s) => (s.hosts.vm1 = {}), "vms.vm1");
  bad((s) => (s.links = []), "vms.vm1");
  bad((s) => (linkOf(s).kind = "veth"), "links[0].kind");
  bad((s) => (linkOf(s).vm = "vm9"), "links[0].vm");
  bad((s) => (linkOf(s).ifname = "x"), "links[0].ifname");
  bad((s) => {
    s.name = "abcdefgh";
    s.vms = { vmachine: s.vms!.vm1 };
    s.links = [{ vm: "vmachine", switch: "s1" }];
  }, "links[0].vm");

  const p = planTopology(validateTopology({
    ...base(),
    hosts: { h1: { ip: "10.0.0.1/24" } },
    links: [{ host: "h1", switch: "s1" }, { vm: "vm1", switch: "s1" }, {
      vm: "vm1",
      switch: "s1",
      kind: "tap",
      ip: "10.1.0.2/24",
    }],
  }));
  assert.deepEqual(
    p.ifs.map((i) => [i.host, i.kind, i.ifname, i.port, i.ip.join()]),
    [
      ["h1", "veth", "eth0", "t1-h1-e0", "10.0.0.1/24"],
      ["vm1", "vhost", "eth0", "t1-vm1-e0", "10.0.0.2/24"],
      ["vm1", "vmtap", "eth1", "t1-vm1-e1", "10.1.0.2/24"],
    ],
  );
  assert.deepEqual(p.vms.map((v) => [v.name, v.ifs.length]), [["vm1", 2]]);
  assert.deepEqual(p.hosts.map((h) => h.name), ["h1"]);
  // MACs: distinct, unicast, locally administered
  const macs = p.ifs.map((i) => i.mac);
  assert.equal(new Set(macs).size, 3);
  for (const m of macs) assert.match(m, /^02:/);

  // the TS builder makes the same links
  const t = new Topology("t2");
  const s1 = t.addSwitch("s1"), vm = t.addVm("vm1", { kernel: "/k" });
  t.addLink(vm, s1).addLink(s1, vm, { kind: "tap" });
  assert.deepEqual(t.spec.links, [{ vm: "vm1", switch: "s1" }, {
    vm: "vm1",
    switch: "s1",
    kind: "tap",
  }]);
  assert.throws(() => t.addVm("s1", { kernel: "/k" }), /declared already/);
});

// ---------------------------------------------------------------- the VM on a vhost-user port

vtest(
  "a VM on a vhost-user port and a host on a veth: pingAll, exact ping counts, TCP both ways; " +
    "SIGKILLed owner removed by the next up; torn down by an exception",
  async () => {
    const rd = await freshRunDir();
    const name = `v${TAG}`;

    // an owner that is SIGKILLed leaves QEMU running, recorded in the state file
    const child = startOwner(await ownerScript(rd), spec(name), rd);
    const said = await waitLine(child, "up ");
    assert.match(said, /0% dropped \(2\/2 received\)/, said);
    const oldQemu = Number(/up (\d+)/.exec(said)?.[1]);
    assert.ok(oldQemu > 0 && alive(oldQemu), said);
    const state = JSON.parse(await Deno.readTextFile(`${rd}/.topo/${name}.json`));
    assert.equal(state.vms.vm1.pid, oldQemu);
    child.kill("SIGKILL");
    await child.status;
    child.stderr.cancel();
    assert.ok(alive(oldQemu), "QEMU outlives its owner (detached), as the forwarders do");

    // the next up removes it first
    const logs: string[] = [];
    const t = Topology.from(spec(name));
    const err = new Error("the test's own exception");
    const thrown = await (async () => {
      await using net = await t.up({ runDir: rd, log: (m) => logs.push(m) });
      assert.match(logs.join("\n"), /removed what topology .* left behind.*VM vm1 \(QEMU pid/);
      assert.ok(!alive(oldQemu), `the old QEMU (pid ${oldQemu}) still runs`);
      const vm = net.vm("vm1");
      assert.ok(vm.running && vm.pid !== oldQemu);

      // commands in the guest: its NIC has the planned MAC and address
      const r = await vm.run(["cat", "/sys/class/net/eth0/address"], { timeoutMs: BOOT_MS });
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.stdout.trim(), vm.mac);
      const a = await vm.sh("ip addr show dev eth0 | grep -c 'inet 10.79.0.2/24'");
      assert.equal(a.stdout.trim(), "1", a.stdout);
      assert.equal((await vm.sh("exit 3")).code, 3);

      // pingAll includes the VM, both ways
      const all = await net.pingAll();
      assert.deepEqual(all.matrix, { h1: { vm1: true }, vm1: { h1: true } }, all.text);
      assert.equal(all.lossPercent, 0, all.text);

      // 3 pings each way: exactly 6 frames in and out on each port (static
      // ARP on both sides, IPv6 off in the guest and the namespace)
      const before = net.snapshot().s1;
      const p1 = await net.ping("h1", "vm1", { count: 3 });
      const p2 = await net.ping("vm1", "h1", { count: 3 });
      assert.deepEqual([p1.received, p2.received], [3, 3]);
      const after = await net.waitFor(
        (c) => c.s1.vm1.rx_packets - before.vm1.rx_packets >= 6,
        { what: "the pings on vm1's port", timeoutMs: 10000 },
      );
      for (const n of ["h1", "vm1"]) {
        assert.equal(after.s1[n].tx_packets - before[n].tx_packets, 6, `${n} tx`);
        assert.equal(after.s1[n].rx_packets - before[n].rx_packets, 6, `${n} rx`);
      }

      // TCP both ways, exact byte counts, content checked (SHA-256)
      const up = await net.tcp("h1", "vm1", { bytes: 1_000_003, timeoutMs: BOOT_MS });
      assert.deepEqual([up.sent, up.received, up.firstBadByte], [1_000_003, 1_000_003, -1]);
      const back = await net.tcp("vm1", "h1", { bytes: 777_777, port: 5202, timeoutMs: BOOT_MS });
      assert.deepEqual([back.sent, back.received, back.firstBadByte], [777_777, 777_777, -1]);

      // the vhost-user port is the VM's, and status shows QEMU
      const st = await net.status();
      assert.deepEqual(st.vms.map((v) => [v.name, v.pid, v.running]), [["vm1", vm.pid, true]]);
      const link = st.links.find((l) => l.host === "vm1")!;
      assert.equal(link.kind, "vhost");
      assert.match(link.forwarder, /running/);
      assert.ok(Deno.statSync(`${rd}/.topo/${name}/${name}-vm1-e0`).isSocket);
      throw err;
    })().catch((e) => e);
    assert.equal(thrown, err);
    await assertClean(name, rd);
  },
);

// ---------------------------------------------------------------- other teardown paths

vtest(
  "a VM on a TAP: SIGINT to its owner tears it down; vale topo up (detached), status, down; " +
    "a VM with another init",
  async () => {
    const rd = await freshRunDir();
    const a = `w${TAG}`, b = `x${TAG}`;
    const file = `${rd}/topo.json`;
    await Deno.writeTextFile(file, JSON.stringify(spec(b), null, 1));
    // a failure half-way must not leave a detached topology behind
    const pending: Promise<unknown>[] = [];
    const cleanup = async () => {
      await Promise.allSettled(pending); // the bring-ups under way end first
      for (const n of [a, b, `z${TAG}`]) await sh(VALE, ["topo", "down", n], { VALE_RUN_DIR: rd });
    };
    let child: Deno.ChildProcess | undefined;
    try {
      // both at once: two boots in parallel
      child = startOwner(await ownerScript(rd), spec(a, "tap"), rd);
      const cli = sh(VALE, ["topo", "up", file], { VALE_RUN_DIR: rd });
      pending.push(cli);
      // and a VM whose image vale does not drive (init: "other"): up waits for its port
      const other = spec(`z${TAG}`);
      other.vms!.vm1.init = "other";
      // the image configures itself: here from its command line (and stays up)
      other.vms!.vm1.append = "vale.shell=1 vale.ip=10.79.0.2/24";
      const plain = (async () => {
        await using net = await Topology.from(other).up({ runDir: rd, handleSignals: false });
        const vm = net.vm("vm1");
        await assert.rejects(vm.run(["true"]), /EOPNOTSUPP|init: "vale"/);
        await vm.waitFor(/^VALE-GUEST guest ready$/m, BOOT_MS); // its console is read all the same
        // the host reaches it at the address the spec gives (bounded retries: the
        // guest's NIC comes up on its own time)
        let got = 0;
        for (let i = 0; i < 30 && !got; i++) got = (await net.ping("h1", "vm1")).received;
        assert.equal(got, 1, vm.tail());
      })();
      plain.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      pending.push(plain);

      const said = await waitLine(child, "up ");
      assert.match(said, /0% dropped \(2\/2 received\)/, said);
      const qemu = Number(/up (\d+)/.exec(said)?.[1]);
      child.kill("SIGINT");
      const st = await child.status;
      assert.equal(st.code, 130, await new Response(child.stderr).text());
      assert.ok(!alive(qemu), "QEMU still runs after SIGINT to its owner");
      await assertClean(a, rd);

      const up = await cli;
      assert.equal(up.code, 0, up.err);
      assert.match(up.out, new RegExp(`topology ${b} is up: 1 hosts, 1 VMs, 1 switches, 2 links`));
      // this VM's init is not vale's, so `up` does not wait for its boot: its vhost-user
      // port is down until the guest's driver starts its queues (bounded wait)
      let status = await sh(VALE, ["topo", "status", b], { VALE_RUN_DIR: rd });
      for (let i = 0; i < 120 && !/vm1:eth0 .* vhost forwarder running/.test(status.out); i++) {
        await new Promise((r) => setTimeout(r, 500));
        status = await sh(VALE, ["topo", "status", b], { VALE_RUN_DIR: rd });
      }
      assert.equal(status.code, 0, status.err);
      assert.match(status.out, /^vms:\n {2}vm1 +QEMU pid \d+ running/m);
      assert.match(status.out, /vm1:eth0 .* vhost forwarder running/);
      const down = await sh(VALE, ["topo", "down", b], { VALE_RUN_DIR: rd });
      assert.equal(down.code, 0, down.err);
      await assertClean(b, rd);
      await plain;
      await assertClean(`z${TAG}`, rd);
    } catch (e) {
      try {
        child?.kill("SIGINT"); // its own teardown
      } catch { /* ended */ }
      await child?.status;
      await cleanup();
      throw e;
    }
  },
);

vtest(
  "a QEMU of the topology whose pid was never recorded is found by its -name and stopped",
  async () => {
    const rd = await freshRunDir();
    const name = `y${TAG}`;
    // a QEMU as the topology names its VMs, paused (no guest needed)
    const q = new Deno.Command("qemu-system-x86_64", {
      args: [
        "-name",
        `vale-${name}-vm1`,
        "-machine",
        "none",
        "-display",
        "none",
        "-nodefaults",
        "-S",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      // (bounded) until it runs as QEMU, not as the child before its exec
      for (let i = 0; i < 100 && !procsWith(`vale-${name}-vm1`).length; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(procsWith(`vale-${name}-vm1`).length, 1, "the paused QEMU did not start");
      const s = spec(name);
      const removed = await tearDown({
        version: 1,
        name,
        runDir: rd,
        spec: s,
        owner: null,
        complete: false,
        created: new Date().toISOString(),
        netns: [],
        links: [],
        attachments: [],
        bridges: [],
        switches: [],
        procs: [],
        vms: {}, // killed between starting QEMU and recording it
      });
      const st = await Promise.race([
        q.status,
        new Promise<null>((r) => setTimeout(() => r(null), 10000)),
      ]);
      // stopped: killed by the SIGTERM, or (when it came after QEMU installed its handler)
      // QEMU's own "terminating on signal 15" exit
      assert.ok(st !== null, "QEMU was not stopped");
      assert.ok(
        st.signal === "SIGTERM" || st.signal === "SIGKILL" || st.success,
        JSON.stringify(st),
      );
      assert.match(removed.join(", "), new RegExp(`VM unrecorded \\(QEMU pid ${q.pid}\\)`));
      await assertClean(name, rd);
    } finally {
      try {
        q.kill("SIGKILL");
      } catch { /* ended */ }
    }
  },
);

vtest("an up aborted while the VM boots stops there and tears everything down", async () => {
  const rd = await freshRunDir();
  const name = `u${TAG}`;
  const t = Topology.from(spec(name));
  const ac = new AbortController();
  const logs: string[] = [];
  const up = t.up({
    runDir: rd,
    signal: ac.signal,
    handleSignals: false,
    log: (m) => {
      logs.push(m);
      if (m.startsWith("VMs starting")) setTimeout(() => ac.abort(new Error("stop it")), 300);
    },
  });
  await assert.rejects(up, /stop it/);
  assert.match(logs.join("\n"), /VMs starting: vm1 pid \d+/);
  assert.doesNotMatch(logs.join("\n"), /VMs up/);
  await assertClean(name, rd);
});
