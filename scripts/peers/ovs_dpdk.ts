// Prepares Open vSwitch with DPDK for the benchmark's "OVS-DPDK vhost-user"
// row (bench/peers/ovs_dpdk.ts) without installing it: installing Debian's
// openvswitch-switch-dpdk would make its ovs-vswitchd the system's (and start
// the service), so its .debs (with openvswitch-switch and openvswitch-common)
// are fetched with `apt-get download` from Debian's archive and unpacked with
// `dpkg-deb -x` into build/peers/ovs-dpdk/root/.
//
//   deno run -A scripts/peers/ovs_dpdk.ts [--dir DIR] [--debs DIR]... [--check]
//       [--download-only] [--force] [--quiet]
//
// build/peers/ovs-dpdk/ holds debs/ (the downloaded .debs), root/ (the
// unpacked tree) and manifest.json (the package versions, written last). A
// run with the versions apt offers already prepared is a no-op; without apt
// lists (offline) a tree prepared before is kept. Shared libraries the
// binaries need that are not installed (libunbound8, libxdp1, …) are
// unpacked into the tree too (the row then sets LD_LIBRARY_PATH); DPDK's own
// libraries must be installed (Debian's dpdk, which dpdk-dev pulls in: the
// row's testpmd front-ends need it anyway). Used by scripts/install-peers.sh.
//
// Synchronous, like scripts/guest/prepare.ts, so a test can call it while it
// registers its tests.

import { parseArgs } from "node:util";
import {
  aptArchivesDir,
  aptHasLists,
  candidate,
  candidates,
  type Deb,
  debField,
  findOrDownload,
  installedVersion,
  listDebs,
  localDebs,
  parseDepends,
  run,
} from "../debs.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The default place of the prepared tree; the bench looks here. */
export const OVS_DPDK_DIR = `${ROOT}build/peers/ovs-dpdk`;
/** The packages unpacked, the DPDK build of ovs-vswitchd first. */
export const OVS_PACKAGES = ["openvswitch-switch-dpdk", "openvswitch-switch", "openvswitch-common"];
/** What the row runs, relative to the unpacked root (as the packages install them). */
export const OVS_DPDK_FILES = {
  vswitchd: "usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk",
  ovsdb: "usr/sbin/ovsdb-server",
  tool: "usr/bin/ovsdb-tool",
  vsctl: "usr/bin/ovs-vsctl",
  ofctl: "usr/bin/ovs-ofctl",
  schema: "usr/share/openvswitch/vswitch.ovsschema",
} as const;
export type OvsDpdkFile = keyof typeof OVS_DPDK_FILES;
/** Bumped when the layout of the prepared directory changes. */
const FORMAT = 1;
/** Bound on the shared-library packages unpacked besides OVS (a dependency walk). */
const MAX_LIBRARIES = 40;
const SCRIPT = "scripts/peers/ovs_dpdk.ts";

/** manifest.json. */
interface Manifest {
  format: number;
  /** OVS_PACKAGES → version. */
  packages: Record<string, string>;
  /** Library packages unpacked because they are not installed → version. */
  libraries: Record<string, string>;
  /** Directories of the tree with those libraries, relative to root/. */
  libraryPath: string[];
  ovsVersion: string;
  dpdkVersion: string;
}

/** A prepared (or found) OVS-DPDK: absolute paths and the environment to run it with. */
export interface OvsDpdk {
  /** The unpacked tree ("" for the installed packages). */
  root: string;
  files: Record<OvsDpdkFile, string>;
  /** LD_LIBRARY_PATH when libraries were unpacked into the tree; else empty. */
  env: Record<string, string>;
  /** Where it came from, for messages. */
  source: string;
  packages: Record<string, string>;
  libraries: Record<string, string>;
  ovsVersion?: string;
  dpdkVersion?: string;
}

export interface PrepareOptions {
  /** Default OVS_DPDK_DIR. */
  dir?: string;
  /** Directories searched first for the .debs. */
  debDirs?: string[];
  /** Unpack again even when the same versions are there. */
  force?: boolean;
  /** Fetch the .debs into <dir>/debs and stop. */
  downloadOnly?: boolean;
  log?: (line: string) => void;
}

export interface PrepareResult {
  /** "prepared": unpacked now; "present": already there; "kept": apt could not say, kept; "downloaded". */
  action: "prepared" | "present" | "kept" | "downloaded";
  ovs?: OvsDpdk;
  debs: Deb[];
  /** Why the tree was kept without a version check, or other remarks. */
  note?: string;
}

function filesUnder(root: string): Record<OvsDpdkFile, string> {
  return Object.fromEntries(
    Object.entries(OVS_DPDK_FILES).map(([k, rel]) => [k, root ? `${root}/${rel}` : `/${rel}`]),
  ) as Record<OvsDpdkFile, string>;
}

/** The first of the row's files missing under `root`, or null. */
function missingFile(files: Record<OvsDpdkFile, string>): string | null {
  for (const [k, f] of Object.entries(files)) {
    try {
      const st = Deno.statSync(f);
      if (!st.isFile || (k !== "schema" && !((st.mode ?? 0) & 0o111))) return f;
    } catch {
      return f;
    }
  }
  return null;
}

/** Directories of `root` holding shared libraries (multiarch lib dirs), relative to it. */
function libraryDirs(root: string): string[] {
  const out: string[] = [];
  for (const base of ["lib", "usr/lib"]) {
    try {
      for (const e of Deno.readDirSync(`${root}/${base}`)) {
        if (!e.isDirectory || !/-linux-gnu\w*$/.test(e.name)) continue;
        const d = `${base}/${e.name}`;
        if ([...Deno.readDirSync(`${root}/${d}`)].some((f) => /\.so(\.|$)/.test(f.name))) {
          out.push(d);
        }
      }
    } catch { /* no such directory */ }
  }
  return out;
}

function envFor(root: string, libraryPath: string[]): Record<string, string> {
  return libraryPath.length
    ? { LD_LIBRARY_PATH: libraryPath.map((d) => `${root}/${d}`).join(":") }
    : {};
}

/** The prepared tree in `dir`, or the reason there is none. */
export function readPrepared(dir = OVS_DPDK_DIR): OvsDpdk | string {
  let m: Manifest;
  try {
    m = JSON.parse(Deno.readTextFileSync(`${dir}/manifest.json`));
  } catch {
    return `not prepared in ${dir} (run: deno run -A ${SCRIPT}, or scripts/install-peers.sh)`;
  }
  if (m.format !== FORMAT || !m.packages || !Array.isArray(m.libraryPath)) {
    return `${dir}/manifest.json is of another format (run: deno run -A ${SCRIPT})`;
  }
  const root = `${dir}/root`;
  const files = filesUnder(root);
  const miss = missingFile(files);
  if (miss) return `${miss} is missing (run: deno run -A ${SCRIPT} --force)`;
  return {
    root,
    files,
    env: envFor(root, m.libraryPath),
    source: dir,
    packages: m.packages,
    libraries: m.libraries ?? {},
    ovsVersion: m.ovsVersion,
    dpdkVersion: m.dpdkVersion,
  };
}

/**
 * The OVS-DPDK the bench runs: $VBENCH_OVS_DPDK_ROOT (a `dpkg-deb -x` tree
 * made by hand) when set, else the tree this script prepared, else the
 * installed openvswitch-switch-dpdk; or the reason there is none.
 */
export function findOvsDpdk(): OvsDpdk | string {
  const override = Deno.env.get("VBENCH_OVS_DPDK_ROOT");
  if (override) {
    const root = override.replace(/\/+$/, "");
    const files = filesUnder(root);
    const miss = missingFile(files);
    if (miss) {
      return `${miss} is missing (VBENCH_OVS_DPDK_ROOT=${override} should be a dpkg-deb -x of ` +
        `${OVS_PACKAGES.join(", ")}; unset it to use ${SCRIPT}'s tree)`;
    }
    return {
      root,
      files,
      env: envFor(root, libraryDirs(root)),
      source: `VBENCH_OVS_DPDK_ROOT=${override}`,
      packages: {},
      libraries: {},
    };
  }
  const prepared = readPrepared();
  if (typeof prepared !== "string") return prepared;
  const installed = filesUnder("");
  if (!missingFile(installed)) {
    return {
      root: "",
      files: installed,
      env: {},
      source: "the installed packages",
      packages: {},
      libraries: {},
    };
  }
  return `Open vSwitch with DPDK is ${prepared}`;
}

// ---------------------------------------------------------------- preparing

/** Runs a program of the tree with its library path; the first line of its output. */
function runFrom(env: Record<string, string>, bin: string, args: string[]) {
  return run("env", [...Object.entries(env).map(([k, v]) => `${k}=${v}`), bin, ...args]);
}

/**
 * Checks that the unpacked tree runs: every file there, the binaries start
 * (else the libraries ldd cannot find are named) and the schema parses.
 */
function checkTree(root: string, libraryPath: string[]): { ovs: string; dpdk: string } {
  const files = filesUnder(root);
  const miss = missingFile(files);
  if (miss) throw new Error(`${miss} is not in the unpacked packages`);
  const env = envFor(root, libraryPath);
  let ovs = "", dpdk = "";
  for (const k of ["vswitchd", "ovsdb", "vsctl", "tool", "ofctl"] as const) {
    const r = runFrom(env, files[k], ["--version"]);
    if (!r.ok) {
      const ldd = runFrom(env, "ldd", [files[k]]);
      const lost = [...ldd.out.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]);
      throw new Error(
        `${files[k]} --version failed` +
          (lost.length
            ? `: shared libraries not found: ${lost.join(", ")} (install their packages)`
            : `: ${(r.err || r.out).trim()}`),
      );
    }
    if (k === "vswitchd") {
      ovs = /\(Open vSwitch\)\s+(\S+)/.exec(r.out)?.[1] ?? "";
      dpdk = /^DPDK\s+(\S+)/m.exec(r.out)?.[1] ?? "";
      if (!dpdk) throw new Error(`${files[k]} is not built with DPDK: ${r.out.trim()}`);
    }
  }
  const s = runFrom(env, files.tool, ["schema-version", files.schema]);
  if (!s.ok || !/^\d+\.\d+\.\d+$/.test(s.out.trim())) {
    throw new Error(`${files.schema} is not a schema ovsdb-tool reads: ${(s.err || s.out).trim()}`);
  }
  return { ovs, dpdk };
}

/** The versions to prepare: apt's candidates, or (no apt lists) the newest local .debs. */
function wantedVersions(dirs: string[]): Record<string, string> | { why: string } {
  if (aptHasLists()) {
    const v: Record<string, string> = {};
    const all = candidates(OVS_PACKAGES);
    for (const p of OVS_PACKAGES) {
      const c = all[p];
      if (!c) {
        return {
          why: `apt knows no package ${p} (is Debian's main archive in apt's sources? ` +
            "after changing them: apt-get update)",
        };
      }
      v[p] = c;
    }
    if (new Set(Object.values(v)).size !== 1) {
      return {
        why: `apt offers different versions of ${
          OVS_PACKAGES.map((p) => `${p} ${v[p]}`).join(", ")
        } (they must match: apt-get update)`,
      };
    }
    return v;
  }
  // offline: a complete set of local .debs of one version will do
  const main = localDebs(OVS_PACKAGES[0], dirs)[0];
  if (main) {
    const v: Record<string, string> = {};
    for (const p of OVS_PACKAGES) {
      if (!localDebs(p, dirs).some((d) => d.version === main.version)) {
        return { why: `no ${p} ${main.version} .deb next to ${main.file}` };
      }
      v[p] = main.version;
    }
    return v;
  }
  return {
    why: "apt has no package lists (run `apt-get update` as root, or scripts/install-peers.sh) " +
      `and no ${OVS_PACKAGES[0]} .deb is in ${dirs.join(", ")}`,
  };
}

/**
 * The library packages the binaries need that are not installed: fetched,
 * with what they need in turn (bounded). DPDK's libraries are not among
 * them: they must be installed (the EAL loads its drivers from the system's
 * directory, and the row's testpmd needs them too).
 */
function missingLibraries(
  debs: Deb[],
  dirs: string[],
  into: string,
  log: (s: string) => void,
): Deb[] {
  const out: Deb[] = [];
  const seen = new Set<string>(OVS_PACKAGES);
  const queue = debs.flatMap((d) => parseDepends(debField(d.file, "Depends")));
  while (queue.length) {
    const group = queue.shift()!;
    if (group.some((p) => seen.has(p) || installedVersion(p) !== null)) continue;
    const p = group[0];
    seen.add(p);
    if (/^(dpdk|librte-.*)$/.test(p)) {
      throw new Error(
        `DPDK's runtime libraries are not installed (${p}; Debian: dpdk-dev, ` +
          "scripts/install-peers.sh): OVS-DPDK and the row's testpmd need them",
      );
    }
    // only shared libraries matter for running the binaries; the rest (python3,
    // procps, kmod, …) serve the packages' own scripts and services
    if (!/^lib/.test(p) || /-(dev|bin|utils|tools)$/.test(p)) continue;
    if (out.length >= MAX_LIBRARIES) {
      throw new Error(`more than ${MAX_LIBRARIES} library packages missing; install ${p}`);
    }
    const deb = findOrDownload(p, candidate(p), dirs, into, log);
    out.push(deb);
    queue.push(...parseDepends(debField(deb.file, "Depends")));
  }
  return out;
}

function removeQuietly(p: string) {
  try {
    Deno.removeSync(p, { recursive: true });
  } catch { /* gone */ }
}

/** Prepares the tree (or finds it prepared) and returns it. Throws with the reason. */
export function prepareOvsDpdk(opts: PrepareOptions = {}): PrepareResult {
  const dir = (opts.dir ?? OVS_DPDK_DIR).replace(/\/+$/, "");
  const log = opts.log ?? (() => {});
  const into = `${dir}/debs`;
  const dirs = [...(opts.debDirs ?? []), into, aptArchivesDir()];
  if (!run("dpkg-deb", ["--version"]).ok) throw new Error("needs dpkg-deb (a Debian system)");

  const before = readPrepared(dir);
  const want = wantedVersions(dirs);
  if ("why" in want) {
    if (typeof before !== "string" && !opts.force && !opts.downloadOnly) {
      return {
        action: "kept",
        ovs: before,
        debs: [],
        note: `kept the tree prepared before: ${want.why}`,
      };
    }
    throw new Error(want.why);
  }
  if (
    typeof before !== "string" && !opts.force && !opts.downloadOnly &&
    OVS_PACKAGES.every((p) => before.packages[p] === want[p])
  ) {
    return { action: "present", ovs: before, debs: [] };
  }

  const debs = OVS_PACKAGES.map((p) => findOrDownload(p, want[p], dirs, into, log));
  const libs = missingLibraries(debs, dirs, into, log);
  if (opts.downloadOnly) return { action: "downloaded", debs: [...debs, ...libs] };

  Deno.mkdirSync(dir, { recursive: true });
  const tmp = Deno.makeTempDirSync({ dir, prefix: ".tmp-" });
  try {
    for (const d of [...debs, ...libs]) {
      log(`dpkg-deb -x ${d.file}`);
      const r = run("dpkg-deb", ["-x", d.file, `${tmp}/root`]);
      if (!r.ok) throw new Error(`dpkg-deb -x ${d.file}: ${r.err.trim()}`);
    }
    const libraryPath = libs.length ? libraryDirs(`${tmp}/root`) : [];
    const v = checkTree(`${tmp}/root`, libraryPath);
    const manifest: Manifest = {
      format: FORMAT,
      packages: Object.fromEntries(OVS_PACKAGES.map((p, i) => [p, debs[i].version])),
      libraries: Object.fromEntries(libs.map((d) => [debField(d.file, "Package"), d.version])),
      libraryPath,
      ovsVersion: v.ovs,
      dpdkVersion: v.dpdk,
    };
    // the manifest goes first and comes back last: a run cut short in between
    // leaves no manifest, and the next run prepares again
    removeQuietly(`${dir}/manifest.json`);
    removeQuietly(`${dir}/root`);
    Deno.renameSync(`${tmp}/root`, `${dir}/root`);
    Deno.writeTextFileSync(`${tmp}/manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
    Deno.renameSync(`${tmp}/manifest.json`, `${dir}/manifest.json`);
  } finally {
    removeQuietly(tmp);
  }
  // older versions' .debs do not pile up in <dir>/debs
  const keep = new Set([...debs, ...libs].map((d) => d.file));
  for (const f of listDebs([into], /\.deb$/)) if (!keep.has(f)) removeQuietly(f);
  const ovs = readPrepared(dir);
  if (typeof ovs === "string") throw new Error(ovs);
  return { action: "prepared", ovs, debs: [...debs, ...libs] };
}

// ---------------------------------------------------------------- command line

const HELP = `usage: deno run -A ${SCRIPT} [options]

Prepares Open vSwitch with DPDK for the benchmark's OVS-DPDK vhost-user row
without installing it: Debian's ${OVS_PACKAGES.join(", ")}
are fetched with apt-get download and unpacked with dpkg-deb -x into
build/peers/ovs-dpdk/root/ (with any shared library they need that is not
installed). A no-op when the versions apt offers are already there.

  --dir DIR        prepare in DIR instead of build/peers/ovs-dpdk
  --debs DIR       look for the .deb files in DIR first (repeatable)
  --check          only say whether it is prepared and current (no download)
  --download-only  fetch the .debs into DIR/debs, do not unpack
  --force          unpack again even when the same versions are there
  -q, --quiet      print only errors
  -h, --help       this text

Needs dpkg-deb and apt-get (a Debian system) and apt's package lists
(apt-get update). DPDK's runtime libraries must be installed (dpdk-dev).

Exit status: 0 prepared (or already), 1 failed or, with --check, not
prepared or not current (the reason on stderr), 2 bad usage.`;

export function main(args: string[]): number {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        dir: { type: "string" },
        debs: { type: "string", multiple: true },
        check: { type: "boolean" },
        "download-only": { type: "boolean" },
        force: { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    console.error(`ovs-dpdk: ${(e as Error).message} (try --help)`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.check && (values.force || values["download-only"])) {
    console.error("ovs-dpdk: --check does not go with --force or --download-only");
    return 2;
  }
  const dir = values.dir ?? OVS_DPDK_DIR;
  const say = values.quiet ? () => {} : (l: string) => console.log(`ovs-dpdk: ${l}`);
  const describe = (o: OvsDpdk) =>
    `${OVS_PACKAGES[0]} ${o.packages[OVS_PACKAGES[0]]} (Open vSwitch ${o.ovsVersion}, DPDK ` +
    `${o.dpdkVersion}${
      Object.keys(o.libraries).length
        ? `; libraries unpacked too: ${Object.keys(o.libraries).join(" ")}`
        : ""
    }) in ${o.root}`;
  if (values.check) {
    const o = readPrepared(dir);
    if (typeof o === "string") {
      console.error(`ovs-dpdk: ${o}`);
      return 1;
    }
    const want = aptHasLists() ? candidate(OVS_PACKAGES[0]) : null;
    if (want && want !== o.packages[OVS_PACKAGES[0]]) {
      console.error(
        `ovs-dpdk: ${dir} has ${o.packages[OVS_PACKAGES[0]]}, apt offers ${want} ` +
          `(run: deno run -A ${SCRIPT})`,
      );
      return 1;
    }
    say(`prepared: ${describe(o)}`);
    return 0;
  }
  const t0 = performance.now();
  try {
    const r = prepareOvsDpdk({
      dir,
      debDirs: (values.debs ?? []) as string[],
      force: values.force,
      downloadOnly: values["download-only"],
      log: say,
    });
    if (r.note) say(r.note);
    const secs = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
    if (r.action === "downloaded") {
      say(`downloaded: ${r.debs.map((d) => d.file).join(" ")} (${secs})`);
    } else if (r.ovs) {
      const what = { prepared: "prepared", present: "already prepared", kept: "kept" }[r.action];
      say(`${what}: ${describe(r.ovs)} (${secs})`);
    }
    return 0;
  } catch (e) {
    console.error(`ovs-dpdk: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(main(Deno.args));
