// The benchmark's OVS-DPDK peer, prepared and run as a user does:
//
// - scripts/peers/ovs_dpdk.ts from the command line: --help, bad options, the
//   error when apt has no package lists (an APT_CONFIG with empty lists: no
//   network), then a real preparation in a temporary --dir (Debian's .debs
//   downloaded with apt-get download, or taken from build/peers/ovs-dpdk/debs),
//   a second run that changes nothing, a re-unpack when the prepared version
//   is not apt's, --check, and the tree kept when apt knows nothing; a shared
//   library dpkg says is not installed (DPKG_ADMINDIR: a copy of its database)
//   is fetched and unpacked too, and the binary finds it there;
// - the private OVS the row starts (tests/helpers/ovs_dpdk_driver.ts: ovsdb-server
//   and ovs-vswitchd-dpdk with two dpdkvhostuser ports): everything lives in its
//   run directory and namespace, and nothing is left after a normal end, Ctrl-C,
//   or a SIGKILL followed by the next run's removeStale(); the system's
//   /etc/openvswitch, /var/run/openvswitch, … are not touched.
//
// Without apt's lists and local .debs, without DPDK's libraries, or without
// root the cases are registered as ignored with the reason in their names.
// About 25 s (each private OVS starts in ~2 s).

import assert from "node:assert/strict";
import { alive } from "./helpers/procs.ts";
import { removeStale } from "../bench/cleanup.ts";
import { aptHasLists } from "../scripts/debs.ts";
import { missingNetCaps } from "./helpers/machine.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SCRIPT = `${ROOT}/scripts/peers/ovs_dpdk.ts`;
const CACHE = `${ROOT}/build/peers/ovs-dpdk/debs`;
const dec = new TextDecoder();

interface Out {
  code: number;
  out: string;
  err: string;
}

function script(args: string[], env: Record<string, string> = {}): Out {
  const r = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...args],
    env: { DENO_NO_PACKAGE_JSON: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

function exists(p: string): boolean {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** An apt configuration whose package lists and .deb cache are empty directories. */
function aptWithoutLists(dir: string): Record<string, string> {
  Deno.mkdirSync(`${dir}/lists/partial`, { recursive: true });
  Deno.mkdirSync(`${dir}/archives/partial`, { recursive: true });
  Deno.writeTextFileSync(
    `${dir}/apt.conf`,
    `Dir::State::Lists "${dir}/lists";\nDir::Cache::archives "${dir}/archives";\n`,
  );
  return { APT_CONFIG: `${dir}/apt.conf` };
}

const haveDpkg = (() => {
  try {
    return new Deno.Command("dpkg-deb", { args: ["--version"], stdout: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

// The .debs, fetched now (or found) so that a machine that cannot have them skips, saying why.
const work = Deno.makeTempDirSync({ prefix: "vale-ovsdpdk-test-" });
const tree = `${work}/tree`;
const debArgs = exists(CACHE) ? ["--debs", CACHE] : [];
const fetchWhy: string | null = (() => {
  if (!haveDpkg) return "needs dpkg-deb and apt (a Debian system)";
  const r = script(["--download-only", "--quiet", "--dir", tree, ...debArgs]);
  return r.code === 0 ? null : r.err.trim().replace(/^ovs-dpdk: /, "").split("\n")[0];
})();
let prepared = false;

function otest(name: string, why: string | null, fn: () => void | Promise<void>) {
  if (why) Deno.test({ name: `ovs-dpdk: ${name} (skipped: ${why})`, ignore: true, fn() {} });
  else Deno.test({ name: `ovs-dpdk: ${name}`, sanitizeResources: false, sanitizeOps: false, fn });
}

otest("--help, bad options, no apt lists: clear errors", haveDpkg ? null : "needs dpkg-deb", () => {
  const h = script(["--help"]);
  assert.equal(h.code, 0, h.err);
  for (const o of ["--dir", "--debs", "--check", "--download-only", "--force", "--quiet"]) {
    assert.ok(h.out.includes(o), `--help lists ${o}`);
  }
  assert.match(h.out, /build\/peers\/ovs-dpdk/);

  const bad = script(["--bogus"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--bogus.*try --help/);
  assert.equal(script(["--check", "--force"]).code, 2);

  const fresh = `${work}/fresh`;
  const c = script(["--check", "--dir", fresh]);
  assert.equal(c.code, 1);
  assert.match(c.err, /not prepared in .*fresh \(run: deno run -A scripts\/peers\/ovs_dpdk\.ts/);

  const env = aptWithoutLists(`${work}/apt`);
  const r = script(["--dir", fresh], env);
  assert.equal(r.code, 1, r.out);
  assert.match(r.err, /apt has no package lists \(run `apt-get update` as root/);
  assert.match(r.err, /no openvswitch-switch-dpdk \.deb is in /);
  assert.ok(!exists(`${fresh}/root`), "nothing unpacked");
});

otest("prepares, a second run is a no-op, a new version is unpacked again", fetchWhy, () => {
  const t0 = performance.now();
  const r = script(["--dir", tree, ...debArgs]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /ovs-dpdk: prepared: openvswitch-switch-dpdk \S+ \(Open vSwitch \S+, DPDK/);
  const manifest = () => JSON.parse(Deno.readTextFileSync(`${tree}/manifest.json`));
  const m = manifest();
  const v = m.packages["openvswitch-switch-dpdk"];
  assert.deepEqual(Object.keys(m.packages), [
    "openvswitch-switch-dpdk",
    "openvswitch-switch",
    "openvswitch-common",
  ]);
  assert.ok(Object.values(m.packages).every((x) => x === v), JSON.stringify(m.packages));
  for (
    const f of [
      "usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk",
      "usr/sbin/ovsdb-server",
      "usr/bin/ovs-vsctl",
      "usr/bin/ovsdb-tool",
      "usr/share/openvswitch/vswitch.ovsschema",
    ]
  ) assert.ok(exists(`${tree}/root/${f}`), f);
  prepared = true;
  const ino = Deno.statSync(`${tree}/root`).ino;

  const again = script(["--dir", tree, ...debArgs]);
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /ovs-dpdk: already prepared: openvswitch-switch-dpdk /);
  assert.equal(Deno.statSync(`${tree}/root`).ino, ino, "the tree was left as it was");
  assert.equal(script(["--check", "--dir", tree]).code, 0);

  // a tree of another version (as after an apt-get update) is replaced
  const old = { ...m, packages: { ...m.packages, "openvswitch-switch-dpdk": "0.1-1" } };
  Deno.writeTextFileSync(`${tree}/manifest.json`, JSON.stringify(old));
  const re = script(["--dir", tree, ...debArgs]);
  assert.equal(re.code, 0, re.err);
  assert.match(re.out, /ovs-dpdk: prepared: /);
  assert.notEqual(Deno.statSync(`${tree}/root`).ino, ino, "unpacked again");
  assert.deepEqual(manifest(), m);

  // apt knows nothing and no .debs are at hand: the tree prepared before is kept
  if (exists(`${tree}/debs`)) Deno.removeSync(`${tree}/debs`, { recursive: true });
  const off = script(["--dir", tree], aptWithoutLists(`${work}/apt2`));
  assert.equal(off.code, 0, off.err);
  assert.match(off.out, /kept the tree prepared before: apt has no package lists/);
  assert.match(off.out, /ovs-dpdk: kept: openvswitch-switch-dpdk /);
  console.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
});

/** A copy of dpkg's database (DPKG_ADMINDIR) in which `gone` are not installed. */
function dpkgWithout(dir: string, gone: string[]): Record<string, string> {
  Deno.mkdirSync(`${dir}/info`, { recursive: true });
  Deno.mkdirSync(`${dir}/updates`, { recursive: true });
  Deno.writeTextFileSync(`${dir}/available`, "");
  const stanzas = Deno.readTextFileSync("/var/lib/dpkg/status").split("\n\n");
  Deno.writeTextFileSync(
    `${dir}/status`,
    stanzas.filter((st) => !gone.some((p) => st.startsWith(`Package: ${p}\n`))).join("\n\n"),
  );
  return { DPKG_ADMINDIR: dir };
}

otest(
  "a shared library that is not installed is unpacked into the tree too",
  fetchWhy ?? (aptHasLists() ? null : "apt has no package lists (apt-get update)"),
  () => {
    const dir = `${work}/withlibs`;
    const env = dpkgWithout(`${work}/dpkg`, ["libunbound8"]);
    const r = script(["--dir", dir, ...debArgs], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /libraries unpacked too: [^)]*libunbound8/);
    const m = JSON.parse(Deno.readTextFileSync(`${dir}/manifest.json`));
    assert.ok(m.libraries.libunbound8, JSON.stringify(m.libraries));
    assert.ok(m.libraryPath.length > 0);
    // the binary finds it in the tree (with the path the row sets)
    const ldd = new Deno.Command("ldd", {
      args: [`${dir}/root/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk`],
      env: { LD_LIBRARY_PATH: m.libraryPath.map((d: string) => `${dir}/root/${d}`).join(":") },
      stdout: "piped",
    }).outputSync();
    assert.match(dec.decode(ldd.stdout), new RegExp(`libunbound\\.so\\.\\d+ => ${dir}/root/`));
    Deno.removeSync(dir, { recursive: true });
  },
);

// ---------------------------------------------------------------- the private OVS

/** What the system's Open vSwitch uses; the bench must leave all of it as it was. */
const SYSTEM_DIRS = [
  "/etc/openvswitch",
  "/var/run/openvswitch",
  "/run/openvswitch",
  "/var/log/openvswitch",
  "/var/lib/openvswitch",
];

function systemState(): string {
  return SYSTEM_DIRS.map((d) => {
    try {
      return `${d}: ${[...Deno.readDirSync(d)].map((e) => e.name).sort().join(" ")}`;
    } catch {
      return `${d}: absent`;
    }
  }).join("\n");
}

interface Started {
  tmpDir: string;
  dir: string;
  ns: string;
  dpdkPrefix: string;
  pids: number[];
  sockets: string[];
}

function netnsExists(name: string): boolean {
  return exists(`/run/netns/${name}`) || exists(`/var/run/netns/${name}`);
}

/** Everything a private OVS makes: gone? (the unmet ones) */
function leftovers(s: Started): string[] {
  return [
    ...s.pids.filter(alive).map((p) => `process ${p}`),
    ...(netnsExists(s.ns) ? [`netns ${s.ns}`] : []),
    ...[s.tmpDir, `/var/run/dpdk/${s.dpdkPrefix}`].filter(exists),
  ];
}

/** Removes what a failed case left (the test's own cleanup, after failures). */
function scrub(s: Started) {
  for (const p of s.pids) {
    try {
      Deno.kill(p, "SIGKILL");
    } catch { /* gone */ }
  }
  new Deno.Command("ip", { args: ["netns", "del", s.ns], stderr: "null" }).outputSync();
  for (const d of [s.tmpDir, `/var/run/dpdk/${s.dpdkPrefix}`]) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch { /* gone */ }
  }
}

async function startDriver(seconds: number) {
  const env: Record<string, string> = { DENO_NO_PACKAGE_JSON: "1" };
  if (prepared) env.VBENCH_OVS_DPDK_ROOT = `${tree}/root`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/tests/helpers/ovs_dpdk_driver.ts`, String(seconds)],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    while (!buf.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the driver ended before starting OVS: ${await stderr}`);
      buf += value;
    }
  } finally {
    clearTimeout(timer);
  }
  reader.releaseLock();
  const s = JSON.parse(buf.split("\n")[0]) as Started;
  const status = child.status.then(async (st) => {
    await child.stdout.cancel().catch(() => {});
    return { code: st.code, signal: st.signal, err: await stderr };
  });
  return { child, s, status };
}

/** The ns inode of a process's network namespace. */
function netnsOf(pid: number | "self"): string {
  return Deno.readLinkSync(`/proc/${pid}/ns/net`);
}

function checkRunning(s: Started, driverPid: number) {
  assert.equal(s.pids.length, 2);
  for (const p of s.pids) {
    assert.ok(alive(p), `pid ${p} runs`);
    const env = Deno.readTextFileSync(`/proc/${p}/environ`).split("\0");
    assert.ok(env.includes(`VBENCH_OWNER=vbench-${driverPid}-`), "marked for the next run");
    assert.ok(env.includes(`OVS_RUNDIR=${s.dir}`));
  }
  assert.ok(s.dir.startsWith(`${s.tmpDir}/`));
  assert.match(s.tmpDir, new RegExp(`/vbench-${driverPid}-`));
  assert.equal(s.ns, `vbench-${driverPid}-ovst-1`);
  assert.ok(netnsExists(s.ns));
  assert.notEqual(netnsOf(s.pids[1]), netnsOf("self"), "ovs-vswitchd in its own namespace");
  assert.equal(netnsOf(s.pids[0]), netnsOf("self"));
  for (const f of ["db.sock", "conf.db", "ovsdb.pid", "vswitchd.pid", "vswitchd.log", "br0.mgmt"]) {
    assert.ok(exists(`${s.dir}/${f}`), f);
  }
  for (const sock of s.sockets) assert.ok(Deno.lstatSync(sock).isSocket, sock);
  assert.equal(
    Number(Deno.readTextFileSync(`${s.dir}/vswitchd.pid`).trim()),
    s.pids[1],
    "the pid file is the private one",
  );
  assert.ok(exists(`/var/run/dpdk/${s.dpdkPrefix}`));
}

const ovsWhy = (() => {
  const caps = missingNetCaps();
  if (caps.length) return `needs ${caps.join(", ")} (run as root)`;
  if (fetchWhy && !exists(`${ROOT}/build/peers/ovs-dpdk/manifest.json`)) return fetchWhy;
  const mem = /^MemAvailable:\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/meminfo"));
  if (mem && Number(mem[1]) < 3 * 1024 * 1024) return "needs 3 GiB of free memory";
  return null;
})();

otest("the private OVS ends with the run, on Ctrl-C and after a SIGKILL", ovsWhy, async () => {
  const before = systemState();
  const all: Started[] = [];
  try {
    // a normal end: the driver's time is up, its cleanup runs
    {
      const d = await startDriver(1);
      all.push(d.s);
      const st = await d.status;
      assert.equal(st.code, 0, st.err);
      assert.deepEqual(leftovers(d.s), []);
    }
    // Ctrl-C
    {
      const d = await startDriver(60);
      all.push(d.s);
      checkRunning(d.s, d.child.pid);
      d.child.kill("SIGINT");
      const st = await d.status;
      assert.equal(st.code, 130, st.err);
      assert.match(st.err, /SIGINT: cleaning up/);
      assert.deepEqual(leftovers(d.s), []);
    }
    // SIGKILL: OVS outlives its runner; the next run finds and removes it
    {
      const d = await startDriver(60);
      all.push(d.s);
      d.child.kill("SIGKILL");
      await d.status;
      assert.deepEqual(leftovers(d.s).filter((l) => l.startsWith("process")).length, 2);
      const removed = await removeStale();
      for (const p of d.s.pids) assert.ok(removed.includes(`process ${p}`), removed.join(", "));
      assert.ok(removed.includes(`netns ${d.s.ns}`), removed.join(", "));
      // the processes were SIGKILLed: give the kernel a moment to reap them
      for (let i = 0; i < 50 && d.s.pids.some(alive); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(leftovers(d.s), []);
    }
    assert.equal(systemState(), before, "the system's OVS directories are untouched");
  } finally {
    for (const s of all) scrub(s);
  }
});

Deno.test({
  name: "ovs-dpdk: remove the test's temporary directory",
  sanitizeResources: false,
  fn() {
    Deno.removeSync(work, { recursive: true });
  },
});
