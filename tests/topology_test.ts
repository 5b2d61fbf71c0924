// Topologies (lib/topo/, `vale topo`): 2 switches joined by a bridge, 4 hosts
// (network namespaces; h1 and h3 by veth, h2 and h4 by TAP), brought up from
// TypeScript and from a JSON file through the CLI. All pairs ping, TCP moves
// an exact byte count across the bridge, pkt-gen's frames and the ping frames
// are counted exactly on every port they cross (and on no other). After every
// kind of teardown — normal, by exception, SIGINT to a script and to
// `vale topo up -f`, SIGKILL followed by the next `up` — no namespace,
// interface, process, switch or state file of the topology is left.
//
// Every case uses its own topology name (t<pid>…, so its own names) and a
// private VALE_RUN_DIR. Without root the kernel cases are listed as ignored
// with the reason; the validation cases run anywhere.

import assert from "node:assert/strict";
import { alive } from "./helpers/procs.ts";
import { haveCmd, netSkipReason, testGroup } from "./helpers/machine.ts";
import {
  assertTopologyClean,
  procsWith,
  RunDirs,
  sh,
  waitLine as waitLineOf,
} from "./helpers/topo_check.ts";
import {
  openPort,
  openTopology,
  Topology,
  TopologyError,
  type TopologySpec,
  validateTopology,
} from "../lib/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const VALE = `${ROOT}bin/vale`;
const TAG = `${Deno.pid % 100000}`;

// after each case: its private run directories (and what may still run from them)
const ktest = testGroup("topology", netSkipReason(), () => runDirs.removeAll());

// ---------------------------------------------------------------- helpers

/** The test topology: s1 (h1 veth, h2 TAP) — bridge — s2 (h3 veth, h4 TAP). */
function spec(name: string): TopologySpec {
  return {
    name,
    staticArp: true,
    switches: { s1: {}, s2: { lookup: "learning" } },
    hosts: {
      h1: { ip: "10.77.0.1/24" },
      h2: { ip: "10.77.0.2/24" },
      h3: { ip: "10.77.0.3/24" },
      h4: { ip: "10.77.0.4/24" },
    },
    links: [
      { host: "h1", switch: "s1" },
      { host: "h2", switch: "s1", kind: "tap" },
      { host: "h3", switch: "s2" },
      { host: "h4", switch: "s2", kind: "tap" },
      { switches: ["s1", "s2"] },
    ],
  };
}

const vale = (runDir: string, ...args: string[]) => sh(VALE, args, { VALE_RUN_DIR: runDir });

const assertClean = assertTopologyClean;

const runDirs = new RunDirs("vale-topo-");
const freshRunDir = () => runDirs.fresh();

const waitLine = (child: Deno.ChildProcess, what: string, ms = 30000) =>
  waitLineOf(child, what, ms);

/** The packet counts of every port, for before/after comparisons. */
function packets(
  net: { snapshot(): Record<string, Record<string, { tx_packets: number; rx_packets: number }>> },
) {
  const out: Record<string, number> = {};
  for (const [s, ports] of Object.entries(net.snapshot())) {
    for (const [p, c] of Object.entries(ports)) {
      out[`${s}.${p}.tx`] = c.tx_packets;
      out[`${s}.${p}.rx`] = c.rx_packets;
    }
  }
  return out;
}
function delta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const k of Object.keys(b)) if (b[k] !== a[k]) d[k] = b[k] - (a[k] ?? 0);
  return d;
}

// ---------------------------------------------------------------- validation (no root)

Deno.test("topology: the JSON schema's errors name the bad field", async () => {
  const bad: [unknown, RegExp][] = [
    [
      { ...spec("x"), hosts: { h1: { ip: "10.0.0.300/24" } } },
      /^hosts\.h1\.ip: "10\.0\.0\.300\/24" is not an IPv4/,
    ],
    [{ ...spec("x"), name: "much-too-long" }, /^name: /],
    [{ ...spec("x"), links: [{ host: "h9", switch: "s1" }] }, /^links\[0\]\.host: no host "h9"/],
    [
      { ...spec("x"), links: [{ host: "h1", switch: "s1", kind: "vxlan" }] },
      /^links\[0\]\.kind: expected "veth" or "tap"/,
    ],
    [{ ...spec("x"), colour: "blue" }, /^colour: unknown field/],
    [
      { ...spec("x"), switches: { s1: { lookup: "magic" } } },
      /^switches\.s1\.lookup: expected learning/,
    ],
    [
      {
        ...spec("x"),
        switches: { s1: {}, s2: {}, s3: {} },
        links: [{ switches: ["s1", "s2"] }, { switches: ["s2", "s3"] }, { switches: ["s3", "s1"] }],
      },
      /^links\[2\]\.switches: bridging s3 and s1 closes a loop/,
    ],
    [
      { ...spec("x"), hosts: { h1: { routes: [{ to: "default" }] } }, links: [] },
      /^hosts\.h1\.routes\[0\]: needs "via" or "dev"/,
    ],
    [{
      ...spec("abcdefgh"),
      hosts: { hostname1: {} },
      links: [{ host: "hostname1", switch: "s1" }],
    }, /^links\[0\]\.host: the switch-side interface would be named/],
  ];
  for (const [v, re] of bad) {
    assert.throws(
      () => validateTopology(v),
      (e: unknown) => e instanceof TopologyError && re.test(e.message),
      re.source,
    );
  }
  validateTopology(spec("x")); // the test topology itself is valid
  // the CLI: exit status 2 and the file and field in the message
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/bad.json`;
    await Deno.writeTextFile(
      f,
      JSON.stringify({ ...spec("x"), hosts: { ...spec("x").hosts, h2: { mtu: 10 } } }),
    );
    const r = await vale(dir, "topo", "check", f);
    assert.equal(r.code, 2, r.err);
    assert.match(
      r.err,
      new RegExp(`${f}: hosts\\.h2\\.mtu: MTU must be an integer from 68 to 65535, got 10`),
    );
    await Deno.writeTextFile(f, "{ not json");
    const j = await vale(dir, "topo", "up", f);
    assert.equal(j.code, 2);
    assert.match(j.err, /bad\.json: not valid JSON/);
    await Deno.writeTextFile(f, JSON.stringify(spec("x")));
    const ok = await vale(dir, "topo", "check", f);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /bridge valex_s1:to-s2 <-> valex_s2:to-s1/);
    assert.match(ok.out, /tap h2:x-h2-e0 on valex_s1/);
    const help = await vale(dir, "topo", "--help");
    assert.equal(help.code, 0);
    assert.match(help.out, /Exit status/);
    assert.equal((await vale(dir, "topo", "frobnicate")).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- kernel cases

ktest(
  "from TypeScript: pingAll, exact counters for ping and pkt-gen frames, exact TCP bytes; clean after",
  async () => {
    const rd = await freshRunDir();
    const name = `a${TAG}`;
    let sleeper: Deno.ChildProcess | undefined;
    {
      await using net = await Topology.from(spec(name)).up({ runDir: rd });
      // a long-running program in a host goes with the topology
      sleeper = net.host("h1").spawn(["sleep", "600"], { stdout: "null", stderr: "null" });

      const all = await net.pingAll();
      assert.equal(all.received, 12, all.text);
      assert.equal(all.lossPercent, 0);
      assert.match(all.text, /h1 -> h2 h3 h4\n/);
      assert.match(all.text, /\*\*\* Results: 0% dropped \(12\/12 received\)/);

      // 3 pings h1 -> h2 (same switch): exactly 3 requests and 3 replies on their
      // two ports, nothing elsewhere (static ARP, no IPv6: the hosts send nothing else)
      let before = packets(net);
      const p = await net.ping("h1", "h2", { count: 3 });
      assert.equal(p.received, 3);
      assert.deepEqual(delta(before, packets(net)), {
        "s1.h1.tx": 3,
        "s1.h1.rx": 3,
        "s1.h2.tx": 3,
        "s1.h2.rx": 3,
      });

      // pkt-gen: 1000 frames h1 -> h3, across the bridge
      before = packets(net);
      const rx3 = await net.host("h3").ifCounter("rx_packets");
      const g = await net.pktgen("h1", "h3", { count: 1000, size: 60, rate: 20000 });
      assert.equal(g.sent, 1000, g.stdout);
      await net.waitFor((s) => s.s2.h3.rx_packets >= before["s2.h3.rx"] + 1000, {
        what: "1000 frames at h3",
      });
      assert.deepEqual(delta(before, packets(net)), {
        "s1.h1.tx": 1000, // into s1 from h1
        "s1.s2.rx": 1000, // to the bridge
        "s2.s1.tx": 1000, // from the bridge into s2
        "s2.h3.rx": 1000, // to h3
      });
      assert.equal(await net.host("h3").ifCounter("rx_packets") - rx3, 1000);

      // TCP h1 (veth) -> h4 (TAP) across the bridge: an exact byte count, content checked
      const bytes = 20 * 1024 * 1024 + 12345;
      const t = await net.tcp("h1", "h4", { bytes });
      assert.equal(t.sent, bytes);
      assert.equal(t.received, bytes);
      assert.equal(t.firstBadByte, -1);

      // nothing unaccounted anywhere
      for (const ports of Object.values(net.snapshot())) {
        for (const c of Object.values(ports)) {
          assert.equal(c.sync_errors, 0);
          assert.equal(c.drops.bad_slot + c.drops.ring_full, 0, JSON.stringify(c));
        }
      }
      const st = await net.status();
      assert.equal(st.state, "up");
      assert.equal(st.links.filter((l) => l.forwarder.startsWith("running")).length, 4);
      assert.ok(st.bridges[0].running);
    }
    await assertClean(name, rd);
    assert.equal((await sleeper!.status).signal, "SIGTERM"); // stopped by the teardown
  },
);

ktest(
  "an exception inside `await using`, or an aborted bring-up, tears the topology down",
  async () => {
    const rd = await freshRunDir();
    const name = `b${TAG}`;
    await assert.rejects(async () => {
      await using net = await Topology.from(spec(name)).up({ runDir: rd });
      assert.equal((await net.ping("h2", "h4")).received, 1);
      throw new Error("boom");
    }, /boom/);
    await assertClean(name, rd);
    // a bring-up aborted half-way (its signal, as Ctrl-C does) tears down what it made
    const ac = new AbortController();
    await assert.rejects(
      Topology.from(spec(name)).up({
        runDir: rd,
        signal: ac.signal,
        log: (m) => m.startsWith("links:") && ac.abort(new Error("stop here")),
      }),
      /stop here/,
    );
    await assertClean(name, rd);
  },
);

ktest(
  "a switch port held by someone else: down fails naming it, keeps the record, retries",
  async () => {
    const rd = await freshRunDir();
    const name = `f${TAG}`;
    const net = await Topology.from(spec(name)).up({ runDir: rd, handleSignals: false });
    const intruder = openPort(`${net.switchName("s1")}:x`, { runDir: rd });
    try {
      await assert.rejects(
        net.down(),
        (e: Error) => /could not remove switch vale\w+_s1: ports still in use/.test(e.message),
      );
      assert.match((await vale(rd, "topo", "status")).out, new RegExp(`^${name} `, "m")); // still recorded
    } finally {
      intruder.close();
    }
    await net.down();
    await assertClean(name, rd);
  },
);

ktest(
  "SIGINT to a script running a topology: torn down, status 130; vale topo down asks a live owner",
  async () => {
    const rd = await freshRunDir();
    const name = `c${TAG}`;
    const script = `${rd}/run.ts`;
    await Deno.writeTextFile(
      script,
      `import { Topology } from "${ROOT}lib/mod.ts";
const net = await Topology.from(JSON.parse(Deno.args[0])).up({ runDir: Deno.args[1] });
const p = net.host("h3").spawn(["sleep", "600"], { stdout: "null", stderr: "null" });
console.log("up", p.pid);
setInterval(() => {}, 1000);`,
    );
    const start = () =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--no-lock",
          "--config",
          `${ROOT}deno.json`,
          script,
          JSON.stringify(spec(name)),
          rd,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    const child = start();
    const sleeper = Number(/up (\d+)/.exec(await waitLine(child, "up"))?.[1]);
    assert.equal((await sh("ip", ["netns", "list"])).out.includes(`vale-${name}-h3`), true);
    child.kill("SIGINT");
    const st = await child.status;
    assert.equal(st.code, 130, await new Response(child.stderr).text());
    await assertClean(name, rd);
    assert.ok(!alive(sleeper), `the program spawned in h3 (pid ${sleeper}) is still running`);

    // `vale topo down` of a topology a live script keeps up: it asks the script (SIGTERM)
    const again = start();
    await waitLine(again, "up");
    const down = await vale(rd, "topo", "down", name);
    assert.equal(down.code, 0, down.err);
    assert.match(down.err, new RegExp(`asking process ${again.pid}, which keeps ${name} up`));
    assert.equal((await again.status).code, 143);
    again.stderr.cancel();
    await assertClean(name, rd);
  },
);

ktest("from a JSON file with vale topo: up (detached), status, pingAll, down", async () => {
  const rd = await freshRunDir();
  const name = `d${TAG}`;
  const file = `${rd}/topo.json`;
  await Deno.writeTextFile(file, JSON.stringify(spec(name), null, 2));
  const up = await vale(rd, "topo", "up", file);
  assert.equal(up.code, 0, up.err);
  assert.match(up.out, new RegExp(`topology ${name} is up: 4 hosts, 2 switches, 5 links`));
  // a second up is refused
  const again = await vale(rd, "topo", "up", file);
  assert.equal(again.code, 1);
  assert.match(again.err, /is already up/);
  try {
    // the API on a topology the CLI brought up
    await using net = openTopology(name, { runDir: rd });
    const all = await net.pingAll();
    assert.equal(all.received, 12, all.text);
    const list = await vale(rd, "topo", "status");
    assert.match(list.out, new RegExp(`^${name} +up +- +4 +2 +5$`, "m"));
    const s = await vale(rd, "topo", "status", file);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, new RegExp(`topology ${name}: up \\(detached\\)`));
    assert.match(s.out, /h2:d\d+-h2-e0 +vale\w+_s1:d\d+-h2-e0 +tap +forwarder running tap pid \d+/);
    assert.match(s.out, /bridges:\n {2}vale\w+_s1:to-s2 <-> vale\w+_s2:to-s1 {2}pid \d+ running/);
    assert.match(s.out, / {4}to-s2 +\d+ +\d+ +\d+ +\d+ +0 {2}\d+/);
    const j = JSON.parse((await vale(rd, "topo", "status", "--json", name)).out);
    assert.equal(j.switches.length, 2);
    assert.equal(j.switches[0].ports.length, 3);
    // pingAll crossed h1's port: its 3 requests and 3 replies into the switch, exactly; the
    // switch delivered it 3 replies and 3 requests, plus whatever it flooded while it had not
    // learned a destination yet (the pairs ping in parallel)
    const h1 = j.switches[0].ports.find((p: { name: string }) => p.name === `${name}-h1-e0`);
    assert.equal(h1.counters.tx_packets, 6, JSON.stringify(h1.counters));
    assert.ok(
      h1.counters.rx_packets >= 6 && h1.counters.rx_packets <= 12, // at most one flood per source and destination
      JSON.stringify(h1.counters),
    );
  } finally {
    const down = await vale(rd, "topo", "down", file);
    assert.equal(down.code, 0, down.err);
    assert.match(down.err, new RegExp(`topology ${name} is down: removed bridge pid \\d+`));
  }
  await assertClean(name, rd);
  // down again: nothing to do, still success
  const twice = await vale(rd, "topo", "down", name);
  assert.equal(twice.code, 0);
  assert.match(twice.err, /is not up/);
});

ktest(
  "vale topo up -f: Ctrl-C tears down (status 0); SIGKILL leaves it to the next up, which removes it; IPv6, routes, MTU",
  async () => {
    const rd = await freshRunDir();
    const name = `e${TAG}`;
    const file = `${rd}/topo.json`;
    // the same topology with IPv6, a route and a jumbo MTU on some hosts
    const s = spec(name);
    s.hosts.h1.ip6 = "fd77::1/64";
    s.hosts.h4.ip6 = "fd77::4/64";
    s.hosts.h3.routes = [{ to: "10.9.0.0/16", via: "10.77.0.254" }];
    s.links[1] = { host: "h2", switch: "s1", kind: "tap", mtu: 9000 };
    await Deno.writeTextFile(file, JSON.stringify(s));
    const fg = () =>
      new Deno.Command(VALE, {
        args: ["topo", "up", "-f", file],
        env: { VALE_RUN_DIR: rd },
        stdout: "piped",
        stderr: "piped",
      }).spawn();

    // SIGINT
    let child = fg();
    await waitLine(child, "Ctrl-C tears it down");
    child.kill("SIGINT");
    let st = await child.status;
    const errText = await new Response(child.stderr).text();
    assert.equal(st.code, 0, errText);
    assert.match(errText, /SIGINT: tearing/);
    await assertClean(name, rd);

    // SIGKILL: everything stays (the forwarders and the bridge are their own processes)
    child = fg();
    await waitLine(child, "Ctrl-C tears it down");
    child.kill("SIGKILL");
    st = await child.status;
    assert.equal(st.signal, "SIGKILL");
    child.stderr.cancel();
    assert.ok((await sh("ip", ["netns", "list"])).out.includes(`vale-${name}-h1`));
    assert.ok(procsWith(`vale${name}_`).length > 0);
    const stale = await vale(rd, "topo", "status");
    assert.match(stale.out, new RegExp(`^${name} +stale`, "m"));

    // the next up removes the leftovers, then brings it up afresh
    const up = await vale(rd, "topo", "up", file);
    assert.equal(up.code, 0, up.err);
    assert.match(
      up.err,
      new RegExp(`removed what topology ${name} left behind .*namespace vale-${name}-h1`),
    );
    {
      await using net = openTopology(name, { runDir: rd });
      assert.equal((await net.pingAll()).received, 12);
      assert.equal((await net.ping("h1", "h4", { family: 6, count: 2 })).received, 2);
      const h3 = net.host("h3"), h2 = net.host("h2");
      assert.match(
        (await h3.run(["ip", "route"])).stdout,
        /10\.9\.0\.0\/16 via 10\.77\.0\.254 dev eth0/,
      );
      assert.match(
        (await h2.run(["ip", "link", "show", h2.interfaces[0].name])).stdout,
        /mtu 9000/,
      );
      assert.match((await h2.sh("ip -6 addr | wc -l")).stdout.trim(), /^0$/); // no IPv6 where none is asked for
    }
    // SIGKILL again, and this time `down` cleans up
    const down = await vale(rd, "topo", "down", name);
    assert.equal(down.code, 0, down.err);
    await assertClean(name, rd);
  },
);

ktest("without the capabilities: up names them and makes nothing", async () => {
  const rd = await freshRunDir();
  const name = `h${TAG}`;
  const file = `${rd}/topo.json`;
  await Deno.writeTextFile(file, JSON.stringify(spec(name)));
  const r = await sh("setpriv", [
    "--bounding-set=-all",
    "--inh-caps=-all",
    VALE,
    "topo",
    "up",
    file,
  ], {
    VALE_RUN_DIR: rd,
  });
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /a topology needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN/);
  await assertClean(name, rd);
}, haveCmd("setpriv", ["--version"]) ? "" : "needs setpriv (util-linux, scripts/install-deps.sh)");

ktest("a state directory that is a symlink is refused before anything is made", async () => {
  const rd = await freshRunDir();
  const name = `g${TAG}`;
  const elsewhere = await Deno.makeTempDir();
  try {
    await Deno.symlink(elsewhere, `${rd}/.topo`);
    const file = `${rd}/topo.json`;
    await Deno.writeTextFile(file, JSON.stringify(spec(name)));
    const up = await vale(rd, "topo", "up", file);
    assert.equal(up.code, 1);
    assert.match(up.err, /\.topo is a symbolic link.*does not follow symlinks/);
    assert.deepEqual([...Deno.readDirSync(elsewhere)], []);
    await Deno.remove(`${rd}/.topo`);
    await assertClean(name, rd);
  } finally {
    await Deno.remove(elsewhere, { recursive: true });
  }
});
