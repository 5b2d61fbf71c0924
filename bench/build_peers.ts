// Builds the small C peer programs of the side-by-side benchmark
// (bench/c/<name>.c for each name in PEER_PROGRAMS, one program each) into
// build/bench/. Other C files in bench/c belong to other benchmarks and are
// not built here. Rebuilds a program only when its source is newer; `--force`
// rebuilds all.
//
//   deno run -A bench/build_peers.ts [--force]
//
// CC and CFLAGS from the environment are honoured.

import { parseArgs } from "node:util";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const PEER_SRC_DIR = `${root}/bench/c`;
export const PEER_BIN_DIR = `${root}/build/bench`;

/** The standalone programs the peer rows run (no dependency on libvale). */
export const PEER_PROGRAMS = ["physlimit", "rx_mmap", "tx_ring"];

function mtime(p: string): number {
  try {
    return Deno.statSync(p).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

/** Compiles bench/c/<name>.c into build/bench/<name> for each peer program; returns their paths. */
export async function buildPeers(
  opts: { force?: boolean; quiet?: boolean } = {},
): Promise<Record<string, string>> {
  Deno.mkdirSync(PEER_BIN_DIR, { recursive: true });
  const cc = Deno.env.get("CC") ?? "cc";
  const extra = (Deno.env.get("CFLAGS") ?? "").split(/\s+/).filter(Boolean);
  const out: Record<string, string> = {};
  const sources = PEER_PROGRAMS.map((p) => `${p}.c`);
  for (const name of sources) {
    const prog = name.slice(0, -2);
    const src = `${PEER_SRC_DIR}/${name}`;
    const bin = `${PEER_BIN_DIR}/${prog}`;
    out[prog] = bin;
    if (!opts.force && mtime(bin) >= mtime(src)) continue;
    const tmp = `${bin}.tmp.${Deno.pid}`;
    const args = [
      "-std=gnu11",
      "-O3",
      "-march=native",
      "-g",
      "-Wall",
      "-Wextra",
      ...extra,
      "-o",
      tmp,
      src,
      "-lpthread",
    ];
    if (!opts.quiet) console.error(`build: ${cc} -O3 -march=native … -o build/bench/${prog}`);
    const r = await new Deno.Command(cc, { args, stdout: "inherit", stderr: "inherit" }).output();
    if (!r.success) {
      try {
        Deno.removeSync(tmp);
      } catch { /* nothing written */ }
      throw new Error(`build of bench/c/${name} failed (${cc} exit ${r.code})`);
    }
    Deno.renameSync(tmp, bin);
  }
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { force: { type: "boolean" } } });
  const built = await buildPeers({ force: values.force });
  for (const [name, path] of Object.entries(built)) console.log(`${name}\t${path}`);
}
