// Builds the tiny test guest (a kernel and an initramfs for QEMU) from
// Debian packages only: the cloud kernel image (linux-image-cloud-amd64's
// current dependency) and busybox-static. Used by tests/helpers/guest.ts
// (lazily) and by scripts/install-deps.sh --qemu.
//
//   deno run -A scripts/guest/prepare.ts [--debs DIR]... [--quiet]
//
// The packages are unpacked with `dpkg-deb -x`; the kernel, the NIC driver
// modules (with their dependencies, read from each module's .modinfo) and
// busybox go to build/guest/<key>/, where <key> names the package versions
// and a hash of the guest's /init: a second run with the same versions is a
// no-op. A .deb is looked for in the --debs directories, build/guest/debs/
// and apt's cache, and fetched with `apt-get download` when missing.
//
// Everything here is synchronous so that a test file can call it while it
// registers its tests (to skip them with the reason when it fails).

import { parseArgs } from "node:util";
import { type CpioEntry, cpioNewc } from "./cpio.ts";
import {
  candidate,
  type Deb,
  debField,
  findOrDownload as fetchDeb,
  installedVersion,
  listDebs,
  run,
} from "../debs.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
export const GUEST_DIR = `${ROOT}build/guest`;
const INIT = new URL("./init.sh", import.meta.url).pathname;
const KERNEL_META = "linux-image-cloud-amd64";
const BUSYBOX = "busybox-static";
/** The drivers the guest loads at boot; their dependencies are added. */
const ROOT_MODULES = ["virtio_pci", "virtio_net"];
/**
 * Modules a test may load (`modprobe NAME` in the guest, or GuestOptions.modules):
 * VLANs, a bridge, veth and dummy links, macvlan, TUN, netem. Skipped when built in.
 */
const EXTRA_MODULES = ["8021q", "bridge", "veth", "dummy", "macvlan", "tun", "sch_netem"];
/** Bumped when the image's layout changes in a way the init hash does not show. */
const FORMAT = 1;

export interface GuestImage {
  dir: string;
  kernel: string;
  initramfs: string;
  kernelPackage: string;
  kernelVersion: string;
  kernelRelease: string;
  busyboxVersion: string;
  /** The modules loaded at boot, in load order (relative to /lib/modules/<release>/). */
  modules: string[];
  /** Modules in the image that `modprobe` can load (the rest of EXTRA_MODULES is built in). */
  extraModules: string[];
}

export interface PrepareOptions {
  /** Directories searched first for the .deb files. */
  debDirs?: string[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

const dec = new TextDecoder();

/** The kernel image package the meta package depends on now, e.g. linux-image-6.1.0-50-cloud-amd64. */
function kernelPackageFromApt(): string | null {
  const r = run("apt-cache", ["depends", KERNEL_META]);
  return r.ok ? (/^\s*Depends:\s*(linux-image-\S+)/m.exec(r.out)?.[1] ?? null) : null;
}

/** A .deb of `pkg` at `version` (any version when null): found locally or downloaded. */
function findOrDownload(
  pkg: string,
  version: string | null,
  dirs: string[],
  log: (s: string) => void,
): Deb {
  return fetchDeb(pkg, version, dirs, `${GUEST_DIR}/debs`, log);
}

// ---------------------------------------------------------------- ELF

function elfHeader(b: Uint8Array, what: string): DataView {
  if (b.length < 64 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) {
    throw new Error(`${what}: not an ELF file`);
  }
  if (b[4] !== 2 || b[5] !== 1) throw new Error(`${what}: not a 64-bit little-endian ELF file`);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** True when the executable has no program interpreter (a static binary). */
function isStatic(b: Uint8Array, what: string): boolean {
  const v = elfHeader(b, what);
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true), phnum = v.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (o + 4 > b.length) throw new Error(`${what}: program header out of the file`);
    if (v.getUint32(o, true) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

/** The `depends=` list of a kernel module (its .modinfo section). */
function moduleDepends(b: Uint8Array, what: string): string[] {
  const v = elfHeader(b, what);
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true), shnum = v.getUint16(0x3c, true);
  const shstrndx = v.getUint16(0x3e, true);
  const sec = (i: number) => {
    const o = shoff + i * shentsize;
    if (i >= shnum || o + 64 > b.length) throw new Error(`${what}: section header out of the file`);
    const off = Number(v.getBigUint64(o + 24, true)), size = Number(v.getBigUint64(o + 32, true));
    if (off + size > b.length) throw new Error(`${what}: section out of the file`);
    return { name: v.getUint32(o, true), data: b.subarray(off, off + size) };
  };
  const names = sec(shstrndx).data;
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    const end = names.indexOf(0, s.name);
    if (dec.decode(names.subarray(s.name, end < 0 ? undefined : end)) !== ".modinfo") continue;
    for (const kv of dec.decode(s.data).split("\0")) {
      if (kv.startsWith("depends=")) return kv.slice(8).split(",").filter(Boolean);
    }
    return [];
  }
  throw new Error(`${what}: no .modinfo section`);
}

// ---------------------------------------------------------------- build

/** FNV-1a, 32 bits: a cache key of the init script, not a security hash. */
function fnv(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** "a/b/c.ko" → ["a", "a/b"]: the directories a file needs, outermost first. */
function parents(path: string): string[] {
  const c = path.split("/");
  return c.slice(0, -1).map((_, i) => c.slice(0, i + 1).join("/"));
}

function walk(dir: string, out: Map<string, string>) {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) walk(p, out);
    else if (e.isFile && e.name.endsWith(".ko")) out.set(e.name.slice(0, -3).replace(/-/g, "_"), p);
  }
}

/** Images in build/guest/ (the newest first). */
function builtImages(): GuestImage[] {
  const out: { m: GuestImage; t: number }[] = [];
  try {
    for (const e of Deno.readDirSync(GUEST_DIR)) {
      if (!e.isDirectory || e.name.startsWith(".")) continue;
      try {
        const f = `${GUEST_DIR}/${e.name}/manifest.json`;
        const m = JSON.parse(Deno.readTextFileSync(f)) as GuestImage;
        Deno.statSync(m.kernel);
        Deno.statSync(m.initramfs);
        out.push({ m, t: Deno.statSync(f).mtime?.getTime() ?? 0 });
      } catch { /* not an image */ }
    }
  } catch { /* no build/guest */ }
  return out.sort((a, b) => b.t - a.t).map((x) => x.m);
}

/**
 * Removes images of other package versions and the downloaded .debs not in
 * use (build/guest/ only), so that kernel updates do not pile up there.
 */
function prune(keep: string, keepDebs: string[]) {
  const rm = (p: string) => {
    try {
      Deno.removeSync(p, { recursive: true });
    } catch { /* another process's, or gone */ }
  };
  for (const e of Deno.readDirSync(GUEST_DIR)) {
    const p = `${GUEST_DIR}/${e.name}`;
    if (e.isDirectory && p !== keep && !e.name.startsWith(".")) {
      try {
        Deno.statSync(`${p}/manifest.json`);
        rm(p);
      } catch { /* not an image */ }
    }
  }
  for (const f of listDebs([`${GUEST_DIR}/debs`], /^linux-image-.*\.deb$/)) {
    if (!keepDebs.includes(f)) rm(f);
  }
}

/** Builds the image (or finds it built) and returns where it is. Throws with the reason. */
export function prepareGuest(opts: PrepareOptions = {}): GuestImage {
  const log = opts.log ?? (() => {});
  const dirs = [...(opts.debDirs ?? []), `${GUEST_DIR}/debs`, "/var/cache/apt/archives"];
  for (const [cmd, args] of [["dpkg-deb", ["--version"]], ["dpkg-query", ["--version"]]] as const) {
    if (!run(cmd, [...args]).ok) throw new Error(`needs ${cmd} (a Debian system)`);
  }

  // the kernel: the package linux-image-cloud-amd64 points at now (or the newest local one)
  const kpkg = kernelPackageFromApt();
  let kernel: { file: string; version: string };
  if (kpkg) kernel = findOrDownload(kpkg, candidate(kpkg), dirs, log);
  else {
    try {
      kernel = findOrDownload("linux-image-[0-9][^_]*-cloud-amd64", null, dirs, log);
    } catch {
      // apt cannot say which kernel is current: an image built before will do
      const built = builtImages();
      if (built.length) return built[0];
      throw new Error(
        `apt knows no ${KERNEL_META} (apt-get update, or scripts/install-deps.sh --qemu as ` +
          `root) and no linux-image-*-cloud-amd64 .deb is in ${dirs.join(", ")}`,
      );
    }
  }
  const kernelPackage = debField(kernel.file, "Package");

  // busybox: the installed busybox-static, else its .deb
  const installed = installedVersion(BUSYBOX);
  const bbVersion = installed ?? candidate(BUSYBOX);
  const init = Deno.readTextFileSync(INIT);
  const key = `${kernelPackage}_${kernel.version}+busybox_${bbVersion ?? "local"}+${
    fnv(`${FORMAT}\n${ROOT_MODULES}\n${EXTRA_MODULES}\n${init}`)
  }`.replace(/[^A-Za-z0-9._+-]/g, "_");
  const dir = `${GUEST_DIR}/${key}`;
  try {
    const m = JSON.parse(Deno.readTextFileSync(`${dir}/manifest.json`)) as GuestImage;
    Deno.statSync(m.kernel);
    Deno.statSync(m.initramfs);
    return m; // built before with these versions
  } catch { /* build it */ }

  Deno.mkdirSync(GUEST_DIR, { recursive: true });
  const tmp = Deno.makeTempDirSync({ dir: GUEST_DIR, prefix: ".tmp-" });
  try {
    let busybox: Uint8Array, busyboxVersion: string;
    if (installed && isStatic(Deno.readFileSync("/bin/busybox"), "/bin/busybox")) {
      busybox = Deno.readFileSync("/bin/busybox");
      busyboxVersion = installed;
    } else {
      const deb = findOrDownload(BUSYBOX, bbVersion, dirs, log);
      log(`dpkg-deb -x ${deb.file}`);
      const r = run("dpkg-deb", ["-x", deb.file, `${tmp}/bb`]);
      if (!r.ok) throw new Error(`dpkg-deb -x ${deb.file}: ${r.err.trim()}`);
      busybox = Deno.readFileSync(`${tmp}/bb/bin/busybox`);
      busyboxVersion = deb.version;
      if (!isStatic(busybox, "busybox")) throw new Error(`${deb.file}: busybox is not static`);
    }

    log(`dpkg-deb -x ${kernel.file}`);
    const r = run("dpkg-deb", ["-x", kernel.file, `${tmp}/k`]);
    if (!r.ok) throw new Error(`dpkg-deb -x ${kernel.file}: ${r.err.trim()}`);
    const rels = [...Deno.readDirSync(`${tmp}/k/lib/modules`)].map((e) => e.name);
    if (rels.length !== 1) throw new Error(`${kernel.file}: expected one lib/modules/<release>`);
    const rel = rels[0];
    const modDir = `${tmp}/k/lib/modules/${rel}`;
    const builtin = new Set(
      Deno.readTextFileSync(`${modDir}/modules.builtin`).split("\n").filter(Boolean)
        .map((l) => l.replace(/^.*\//, "").replace(/\.ko$/, "").replace(/-/g, "_")),
    );
    const files = new Map<string, string>();
    walk(`${modDir}/kernel`, files);

    // each module's dependencies (built-in ones left out), read from its .modinfo
    const deps = new Map<string, string[]>();
    const depsOf = (name: string, chain: string[]): string[] => {
      const n = name.replace(/-/g, "_");
      const known = deps.get(n);
      if (known) return known;
      if (chain.includes(n)) throw new Error(`module dependency loop: ${[...chain, n]}`);
      const f = files.get(n);
      if (!f) {
        throw new Error(`${kernel.file}: no module ${n} (needed by ${chain.at(-1) ?? "vale"})`);
      }
      const d = moduleDepends(Deno.readFileSync(f), f).map((x) => x.replace(/-/g, "_"))
        .filter((x) => !builtin.has(x));
      for (const x of d) depsOf(x, [...chain, n]);
      deps.set(n, d);
      return d;
    };
    /** `roots` and everything they need, dependencies first (depth-first, post-order). */
    const loadOrder = (roots: string[]): string[] => {
      const order: string[] = [], seen = new Set<string>();
      const visit = (n: string) => {
        if (seen.has(n)) return;
        seen.add(n);
        for (const d of depsOf(n, [])) visit(d);
        order.push(n);
      };
      for (const r of roots) if (!builtin.has(r)) visit(r);
      return order;
    };
    const order = loadOrder(ROOT_MODULES);
    const extra = EXTRA_MODULES.filter((m) => !builtin.has(m) && files.has(m));
    const all = loadOrder([...ROOT_MODULES, ...extra]);
    const relPath = (m: string) => files.get(m)!.slice(modDir.length + 1);
    // modules.dep as depmod writes it (a module's dependencies in reverse load order),
    // so that busybox modprobe can load the extra modules
    const modulesDep = all.map((m) =>
      `${relPath(m)}:${
        loadOrder([m]).slice(0, -1).reverse().map((d) => " " + relPath(d)).join("")
      }\n`
    ).join("");

    const entries: CpioEntry[] = [
      ...["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "run"]
        .map((path) => ({ path, type: "dir" as const })),
      { path: "root", type: "dir", mode: 0o700 },
      { path: "dev/console", type: "char", major: 5, minor: 1 },
      { path: "dev/null", type: "char", major: 1, minor: 3, mode: 0o666 },
      { path: "bin/busybox", type: "file", data: busybox, mode: 0o755 },
      { path: "bin/sh", type: "symlink", target: "busybox" },
      { path: "init", type: "file", data: init, mode: 0o755 },
      {
        path: "etc/vale-modules",
        type: "file",
        data: order.map((m) => `${relPath(m)}\n`).join(""),
      },
      ...[...new Set(all.flatMap((m) => parents(`lib/modules/${rel}/${relPath(m)}`)))]
        .map((path) => ({ path, type: "dir" as const })),
      { path: `lib/modules/${rel}/modules.dep`, type: "file", data: modulesDep },
      ...all.map((m) => ({
        path: `lib/modules/${rel}/${relPath(m)}`,
        type: "file" as const,
        data: Deno.readFileSync(files.get(m)!),
      })),
    ];
    const out = `${tmp}/out`;
    Deno.mkdirSync(out);
    Deno.copyFileSync(`${tmp}/k/boot/vmlinuz-${rel}`, `${out}/vmlinuz`);
    Deno.writeFileSync(`${out}/initramfs.cpio`, cpioNewc(entries));
    const image: GuestImage = {
      dir,
      kernel: `${dir}/vmlinuz`,
      initramfs: `${dir}/initramfs.cpio`,
      kernelPackage,
      kernelVersion: kernel.version,
      kernelRelease: rel,
      busyboxVersion,
      modules: order.map(relPath),
      extraModules: extra,
    };
    Deno.writeTextFileSync(`${out}/manifest.json`, JSON.stringify(image, null, 2) + "\n");
    try {
      Deno.renameSync(out, dir);
    } catch (e) {
      // another process built the same key at the same time: theirs is as good
      if (!(e instanceof Deno.errors.AlreadyExists) && !/not empty/i.test(String(e))) throw e;
    }
    log(`guest image in ${dir}: ${rel}, boot modules ${order.join(" ")}; extra ${extra.join(" ")}`);
    prune(dir, [kernel.file]);
    return image;
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      debs: { type: "string", multiple: true },
      quiet: { type: "boolean", short: "q" },
      help: { type: "boolean", short: "h" },
    },
    strict: false,
  });
  if (values.help) {
    console.log(
      `usage: deno run -A scripts/guest/prepare.ts [--debs DIR]... [--quiet]

Builds the QEMU test guest (kernel + initramfs) in build/guest/ from Debian's
${KERNEL_META} and ${BUSYBOX} packages. A no-op when it is built for the
current package versions.

  --debs DIR   look for the .deb files in DIR first (repeatable)
  -q, --quiet  print only errors
  -h, --help   this text

Exit status: 0 built or already there, 1 failed (the reason on stderr).`,
    );
    Deno.exit(0);
  }
  const quiet = !!values.quiet;
  try {
    const t0 = performance.now();
    const img = prepareGuest({
      debDirs: (values.debs ?? []) as string[],
      log: quiet ? undefined : (l) => console.log(`guest: ${l}`),
    });
    if (!quiet) {
      console.log(
        `guest: ${img.kernelPackage} ${img.kernelVersion}, busybox ${img.busyboxVersion}, ` +
          `modules: ${img.modules.map((m) => m.replace(/^.*\//, "")).join(" ") || "(built in)"}` +
          `, for modprobe: ${img.extraModules.join(" ")}`,
      );
      console.log(`guest: ${img.dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } catch (e) {
    console.error(`guest: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
