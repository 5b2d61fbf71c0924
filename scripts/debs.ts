// Debian packages without installing them: what apt knows (candidate and
// installed versions, whether it has package lists at all), the fields of a
// .deb, and a .deb found in local directories or fetched from the configured
// Debian archive with `apt-get download`. Shared by the scripts that unpack
// packages into build/ with `dpkg-deb -x` (scripts/guest/prepare.ts,
// scripts/peers/ovs_dpdk.ts).
//
// Everything is synchronous: a test file calls these while it registers its
// tests (to skip them, saying why, when a package cannot be had).

const dec = new TextDecoder();

export interface RunResult {
  ok: boolean;
  out: string;
  err: string;
}

/** Runs a command to completion; never throws (a missing program is `ok: false`). */
export function run(cmd: string, args: string[], cwd?: string): RunResult {
  try {
    const r = new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).outputSync();
    return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: `${cmd}: ${(e as Error).message}` };
  }
}

/** The candidate version apt would install, or null (unknown package, or no lists). */
export function candidate(pkg: string): string | null {
  const r = run("apt-cache", ["policy", pkg]);
  const v = /^\s*Candidate:\s*(\S+)/m.exec(r.out)?.[1];
  return r.ok && v && v !== "(none)" ? v : null;
}

/** The candidate versions of several packages in one `apt-cache policy` (it is slow to start). */
export function candidates(pkgs: string[]): Record<string, string | null> {
  const out: Record<string, string | null> = Object.fromEntries(pkgs.map((p) => [p, null]));
  const r = run("apt-cache", ["policy", ...pkgs]);
  if (!r.ok) return out;
  for (const sec of r.out.split(/^(?=\S)/m)) {
    const name = /^(\S+):\s*$/m.exec(sec)?.[1];
    const v = /^\s*Candidate:\s*(\S+)/m.exec(sec)?.[1];
    if (name && name in out && v && v !== "(none)") out[name] = v;
  }
  return out;
}

/** The installed version of a package, or null when it is not installed. */
export function installedVersion(pkg: string): string | null {
  const r = run("dpkg-query", ["-W", "-f", "${Status} ${Version}", pkg]);
  return /^install ok installed (\S+)/.exec(r.out)?.[1] ?? null;
}

/** A directory of apt's configuration (honours APT_CONFIG), e.g. `Dir::State::Lists/d`. */
function aptDir(key: string, fallback: string): string {
  const r = run("apt-config", ["shell", "D", `${key}/d`]);
  const m = /^D='(.*)'$/m.exec(r.out);
  return (r.ok && m ? m[1] : fallback).replace(/\/$/, "");
}

/** Where apt keeps downloaded .debs (`/var/cache/apt/archives`). */
export function aptArchivesDir(): string {
  return aptDir("Dir::Cache::archives", "/var/cache/apt/archives");
}

/**
 * Whether apt has package lists (`apt-get update` was run): without them
 * `apt-cache policy` knows only the installed packages.
 */
export function aptHasLists(): boolean {
  try {
    for (const e of Deno.readDirSync(aptDir("Dir::State::Lists", "/var/lib/apt/lists"))) {
      if (e.isFile && /_Packages(\.\w+)?$/.test(e.name)) return true;
    }
  } catch { /* no lists directory */ }
  return false;
}

/** dpkg's version order: a < b. */
export function versionLess(a: string, b: string): boolean {
  return run("dpkg", ["--compare-versions", a, "lt", b]).ok;
}

/** One field of a .deb's control file (`Version`, `Depends`, …); throws when unreadable. */
export function debField(file: string, field: string): string {
  const r = run("dpkg-deb", ["-f", file, field]);
  if (!r.ok) throw new Error(`dpkg-deb -f ${file}: ${r.err.trim()}`);
  return r.out.trim();
}

/**
 * A Depends line as groups of alternatives, names only:
 * "kmod | module-init-tools, libc6 (>= 2.34), python3:any" → [[kmod, module-init-tools], [libc6], [python3]].
 */
export function parseDepends(line: string): string[][] {
  return line.split(",").map((g) =>
    g.split("|").map((a) => a.trim().replace(/\s*\(.*\)\s*$/, "").replace(/:\w+$/, ""))
      .filter(Boolean)
  ).filter((g) => g.length > 0);
}

/** The files in `dirs` whose name matches `re` (missing directories are skipped). */
export function listDebs(dirs: string[], re: RegExp): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    try {
      for (const e of Deno.readDirSync(d)) {
        if (e.isFile && re.test(e.name)) out.push(`${d}/${e.name}`);
      }
    } catch { /* no such directory */ }
  }
  return out;
}

export interface Deb {
  file: string;
  version: string;
}

/** The .debs of `pkg` (a name or a name pattern) in `dirs`, the newest first. */
export function localDebs(pkg: string, dirs: string[]): Deb[] {
  const esc = pkg.replace(/[.+]/g, "\\$&");
  return listDebs(dirs, new RegExp(`^${esc}_.*\\.deb$`))
    .map((file) => ({ file, version: debField(file, "Version") }))
    .sort((a, b) => a.version === b.version ? 0 : versionLess(a.version, b.version) ? 1 : -1);
}

/**
 * A .deb of `pkg` at `version` (the newest local one when null): found in
 * `dirs`, else downloaded into `into` with `apt-get download` (from the
 * archives in apt's sources, i.e. Debian's). Throws with the reason.
 */
export function findOrDownload(
  pkg: string,
  version: string | null,
  dirs: string[],
  into: string,
  log: (s: string) => void,
): Deb {
  const local = localDebs(pkg, dirs).filter((d) => version === null || d.version === version);
  if (local.length) return local[0];
  if (version === null) {
    throw new Error(`no ${pkg} .deb in ${dirs.join(", ")} and apt cannot say which`);
  }
  Deno.mkdirSync(into, { recursive: true });
  log(`apt-get download ${pkg}=${version}`);
  // bounded: a dead mirror must not hang the caller
  const r = run("timeout", ["600", "apt-get", "download", "-q", `${pkg}=${version}`], into);
  if (!r.ok) {
    const why = (r.err || r.out).split("\n").filter((l) => !/^W: Download is performed/.test(l))
      .join("\n").trim();
    throw new Error(`apt-get download ${pkg}=${version} failed: ${why}`);
  }
  const got = localDebs(pkg, [into]).find((d) => d.version === version);
  if (!got) throw new Error(`apt-get download ${pkg}=${version} left no .deb in ${into}`);
  return got;
}
