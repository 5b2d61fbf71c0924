// Builds the one shared library (build/libvale.so) from every *.c under c-src/
// (include/, core/, io/, fwd/, apps/; docs/layout.md) with the system C
// compiler. Re-runs only when a source or header anywhere under c-src/ is
// newer than the library, so `deno task test` and the demo can call it every
// time.
//
//   deno run -A scripts/build.ts [--force] [--debug] [--sanitize]
//
// --sanitize builds build/asan/libvale.so instead, with AddressSanitizer and
// UBSan (-O1, frame pointers kept): for C programs linked against it
// (tests/sanitize_test.ts), not for Deno, which would need the runtime preloaded.
//
// CC and CFLAGS from the environment are honoured, like make. The flags are
// ffi/native_build.ts's, shared with the build of a package imported from a
// URL; the build also refreshes that package's manifest (ffi/c_sources.ts).

import { parseArgs } from "node:util";
import { compileArgs, LINK_LIBS } from "../ffi/native_build.ts";
import { writeManifest } from "./c_manifest.ts";

const root = new URL("..", import.meta.url).pathname;
const srcDir = `${root}c-src`;
const outDir = `${root}build`;

export async function buildLibrary(
  opts: { force?: boolean; debug?: boolean; sanitize?: boolean; quiet?: boolean } = {},
): Promise<string> {
  const dir = opts.sanitize ? `${outDir}/asan` : outDir;
  const out = `${dir}/libvale.so`;
  const sources: string[] = [];
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory && p === INTERPOSE_DIR) continue; // its own library, below
      if (e.isDirectory) walk(p);
      if (!e.isFile) continue;
      if (e.name.endsWith(".c")) sources.push(p);
      if (e.name.endsWith(".c") || e.name.endsWith(".h")) {
        newest = Math.max(newest, Deno.statSync(p).mtime?.getTime() ?? 0);
      }
    }
  };
  walk(srcDir);
  sources.sort();
  let built = 0;
  try {
    built = Deno.statSync(out).mtime?.getTime() ?? 0;
  } catch { /* not built yet */ }
  if (!opts.force && built >= newest) {
    if (!opts.sanitize) await buildInterposer(out, opts);
    return out;
  }
  if (!opts.sanitize) await writeManifest(); // the sources a URL import builds from

  Deno.mkdirSync(dir, { recursive: true });
  const cc = Deno.env.get("CC") ?? "cc";
  const tmp = `${out}.tmp.${Deno.pid}`;
  const mode = opts.sanitize ? "sanitize" : opts.debug ? "debug" : "release";
  const args = [...compileArgs(srcDir, mode), "-o", tmp, ...sources, ...LINK_LIBS];
  if (!opts.quiet) {
    console.error(`build: ${cc} … -o ${out.slice(root.length)} (${sources.length} files)`);
  }
  let res;
  try {
    res = await new Deno.Command(cc, { args, stdout: "inherit", stderr: "inherit" }).output();
  } catch (e) {
    throw new Error(
      `build: cannot run the C compiler '${cc}' (${(e as Error).message}); install gcc or set CC`,
    );
  }
  if (!res.success) throw new Error(`build: ${cc} failed (exit ${res.code})`);
  Deno.renameSync(tmp, out); // atomic: a running process keeps its old mapping
  if (!opts.sanitize) await buildInterposer(out, { ...opts, force: true });
  return out;
}

// build/libvale-pcap.so: the libpcap interposer (c-src/interpose/, docs/pcap.md),
// linked against build/libvale.so (found next to it at run time: rpath
// $ORIGIN). It declares the libpcap ABI it needs itself and finds the real
// libpcap at run time, so building it needs no libpcap headers.
const INTERPOSE_DIR = `${srcDir}/interpose`;

export async function buildInterposer(
  libvale: string,
  opts: { force?: boolean; debug?: boolean; quiet?: boolean } = {},
): Promise<string> {
  const out = `${outDir}/libvale-pcap.so`;
  const sources: string[] = [];
  let newest = Deno.statSync(libvale).mtime?.getTime() ?? 0;
  for (const e of Deno.readDirSync(INTERPOSE_DIR)) {
    const p = `${INTERPOSE_DIR}/${e.name}`;
    if (e.name.endsWith(".c")) sources.push(p);
    if (e.name.endsWith(".c") || e.name.endsWith(".h")) {
      newest = Math.max(newest, Deno.statSync(p).mtime?.getTime() ?? 0);
    }
  }
  for (const h of ["vale.h", "vale_app.h"]) {
    newest = Math.max(newest, Deno.statSync(`${srcDir}/include/${h}`).mtime?.getTime() ?? 0);
  }
  sources.sort();
  let built = 0;
  try {
    built = Deno.statSync(out).mtime?.getTime() ?? 0;
  } catch { /* not built yet */ }
  if (!opts.force && built >= newest) return out;
  const cc = Deno.env.get("CC") ?? "cc";
  const extra = (Deno.env.get("CFLAGS") ?? "").split(/\s+/).filter(Boolean);
  const tmp = `${out}.tmp.${Deno.pid}`;
  const args = [
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
    "-D_GNU_SOURCE",
    `-I${srcDir}/include`,
    ...(opts.debug ? ["-O0", "-g"] : ["-O2", "-g"]),
    ...extra,
    "-o",
    tmp,
    ...sources,
    `-L${outDir}`,
    "-lvale",
    "-Wl,-rpath,$ORIGIN",
    "-lpthread",
    "-ldl",
  ];
  if (!opts.quiet) {
    console.error(`build: ${cc} … -o ${out.slice(root.length)} (${sources.length} files)`);
  }
  const res = await new Deno.Command(cc, { args, stdout: "inherit", stderr: "inherit" }).output();
  if (!res.success) throw new Error(`build: ${cc} failed for libvale-pcap.so (exit ${res.code})`);
  Deno.renameSync(tmp, out);
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      force: { type: "boolean" },
      debug: { type: "boolean" },
      sanitize: { type: "boolean" },
    },
  });
  try {
    await buildLibrary({ force: values.force, debug: values.debug, sanitize: values.sanitize });
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
