/**
 * How libvale.so is compiled, for both places that build it: a checkout
 * (scripts/build.ts, into build/) and a package imported from a URL with no
 * checkout (ffi/native_cache.ts, into a per-user cache directory). Run as a
 * program it is the cache's builder: it fetches the published C sources next
 * to this module (file: or http(s):), checks them against the manifest
 * (ffi/c_sources.ts), and compiles them into `--out`.
 *
 *   deno run -A ffi/native_build.ts --out DIR/libvale.so
 *
 * It is a separate process because loading the library is synchronous
 * (`vale()`), while fetching sources is not.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { C_SOURCES, C_SOURCES_SHA256 } from "./c_sources.ts";

/** What the library is compiled for. */
export type BuildMode = "release" | "debug" | "sanitize";

/** The compiler's arguments for the library, sources and output excepted. */
export function compileArgs(srcDir: string, mode: BuildMode = "release"): string[] {
  const flags = mode === "sanitize"
    ? ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    : mode === "debug"
    ? ["-O0", "-g", "-fsanitize=address,undefined"]
    : ["-O3", "-march=native", "-g"];
  const extra = (Deno.env.get("CFLAGS") ?? "").split(/\s+/).filter(Boolean);
  return [
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
    "-D_GNU_SOURCE",
    `-I${srcDir}/include`, // public headers: vale.h, vale_app.h, io.h
    `-I${srcDir}/core`, // the switch's private header internal.h
    ...flags,
    ...extra,
  ];
}

/** The libraries the library links against (after the sources). */
export const LINK_LIBS = ["-lpthread", "-ldl"];

function onPath(cmd: string): string | null {
  if (cmd.includes("/")) return isExecutable(cmd) ? cmd : null;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && isExecutable(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return null;
}

function isExecutable(p: string): boolean {
  try {
    const st = Deno.statSync(p);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * The C compiler to use: `CC` if set, else the first of cc, gcc, clang on
 * PATH. Throws a message naming what is missing and what to do.
 */
export function findCompiler(): string {
  const cc = Deno.env.get("CC");
  if (cc) {
    const found = onPath(cc.split(/\s+/)[0]);
    if (found) return cc;
    throw new Error(
      `vale: cannot build the native library: the C compiler CC=${cc} was not found. ` +
        `Install one (Debian: apt-get install gcc), or set VALE_LIB to a built libvale.so`,
    );
  }
  for (const c of ["cc", "gcc", "clang"]) if (onPath(c)) return c;
  throw new Error(
    "vale: cannot build the native library: no C compiler found (looked for cc, gcc and clang " +
      "on PATH; CC is not set). Install one (Debian: apt-get install gcc), or set VALE_LIB to " +
      "a built libvale.so",
  );
}

/** SHA-256 (hex) of the sources as the manifest hashes them: path, NUL, content, NUL. */
export async function sourcesDigest(files: { path: string; data: Uint8Array }[]): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const f of [...files].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) {
    parts.push(enc.encode(f.path), new Uint8Array(1), f.data, new Uint8Array(1));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fetchSource(root: URL, path: string): Promise<Uint8Array> {
  const url = new URL(path, root);
  if (url.protocol === "file:") return await Deno.readFile(url);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`vale: cannot fetch ${url.href}: ${(e as Error).message}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`vale: cannot fetch ${url.href}: HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Fetch the published C sources (relative to `root`, the package's top) into
 * `work/c-src/`, check them against the manifest, and compile `out`. The
 * library appears under its final name only when complete (rename).
 */
export async function buildFromPublished(root: URL, out: string, work: string): Promise<void> {
  const cc = findCompiler();
  const files = await Promise.all(
    C_SOURCES.map(async (path) => ({ path, data: await fetchSource(root, path) })),
  );
  const digest = await sourcesDigest(files);
  if (digest !== C_SOURCES_SHA256) {
    throw new Error(
      `vale: the C sources at ${new URL("c-src/", root).href} do not match this version's ` +
        `manifest (ffi/c_sources.ts): sha256 ${digest.slice(0, 16)}… instead of ` +
        `${C_SOURCES_SHA256.slice(0, 16)}… (a partly updated or tampered copy?)`,
    );
  }
  for (const f of files) {
    const p = `${work}/${f.path}`;
    await Deno.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    await Deno.writeFile(p, f.data, { mode: 0o600 });
  }
  const srcDir = `${work}/c-src`;
  // c-src/interpose/ is the libpcap interposer, a library of its own that a
  // package import does not need (scripts/build.ts builds it in a checkout)
  const sources = C_SOURCES.filter((p) => p.endsWith(".c") && !p.startsWith("c-src/interpose/"))
    .map((p) => `${work}/${p}`);
  const tmp = `${out}.tmp.${Deno.pid}`;
  const [cmd, ...ccArgs] = cc.split(/\s+/);
  const res = await new Deno.Command(cmd, {
    args: [...ccArgs, ...compileArgs(srcDir), "-o", tmp, ...sources, ...LINK_LIBS],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!res.success) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`vale: building the native library with ${cc} failed (exit ${res.code})`);
  }
  await Deno.chmod(tmp, 0o700);
  await Deno.rename(tmp, out);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { out: { type: "string" }, work: { type: "string" } },
  });
  if (!values.out || !values.work) {
    console.error("usage: native_build.ts --out DIR/libvale.so --work DIR");
    Deno.exit(2);
  }
  try {
    await buildFromPublished(new URL("..", import.meta.url), values.out, values.work);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  } finally {
    await Deno.remove(values.work, { recursive: true }).catch(() => {});
  }
}
