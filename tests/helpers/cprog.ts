// Building and running the C test programs of tests/hostile/ (honest,
// hostile, core_check, fuzz_shm) against build/libvale.so or the sanitizer
// build build/asan/libvale.so. Rebuilt only when a source is newer.
import { buildLibrary } from "../../scripts/build.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SRC = `${ROOT}tests/hostile`;

function mtime(p: string): number {
  try {
    return Deno.statSync(p).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

/** Compile tests/hostile/<name>.c; returns the executable's path. */
export async function buildProg(name: string, opts: { sanitize?: boolean } = {}): Promise<string> {
  const lib = await buildLibrary({ sanitize: opts.sanitize, quiet: true });
  const libDir = lib.slice(0, lib.lastIndexOf("/"));
  const outDir = `${ROOT}build/${opts.sanitize ? "asan/" : ""}hostile`;
  const out = `${outDir}/${name}`;
  const deps = [`${SRC}/${name}.c`, `${SRC}/common.h`, `${ROOT}c-src/include/vale.h`];
  deps.push(`${ROOT}c-src/core/internal.h`, lib);
  if (mtime(out) >= Math.max(...deps.map(mtime))) return out;
  Deno.mkdirSync(outDir, { recursive: true });
  const san = opts.sanitize
    ? ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1"]
    : ["-O1"];
  const tmp = `${out}.tmp.${Deno.pid}`;
  const args = [
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-D_GNU_SOURCE",
    "-g",
    ...san,
    `-I${ROOT}c-src/include`, // vale.h
    `-I${ROOT}c-src/core`, // internal.h (hostile and fuzz_shm poke at private layouts)
    "-o",
    tmp,
    `${SRC}/${name}.c`,
    `-L${libDir}`,
    "-lvale",
    `-Wl,-rpath,${libDir}`,
    "-lpthread",
  ];
  const cc = Deno.env.get("CC") ?? "cc";
  const r = await new Deno.Command(cc, { args, stdout: "inherit", stderr: "inherit" }).output();
  if (!r.success) throw new Error(`cc tests/hostile/${name}.c failed (exit ${r.code})`);
  Deno.renameSync(tmp, out);
  return out;
}

export interface Exit {
  code: number;
  signal: Deno.Signal | null;
  /** still running at the deadline: killed with SIGKILL */
  hung: boolean;
  stdout: string;
  stderr: string;
}

/** A C program running in the background, output collected. */
export class CProc {
  proc: Deno.ChildProcess;
  out = "";
  err = "";
  #done: Promise<Deno.CommandStatus>;
  #lineWaiters: { re: RegExp; res: (ok: boolean) => void }[] = [];
  constructor(bin: string, args: string[], env: Record<string, string>) {
    const proc = this.proc = new Deno.Command(bin, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
      const dec = new TextDecoder();
      for await (const c of s) {
        add(dec.decode(c, { stream: true }));
        this.#check();
      }
    };
    const p1 = pump(this.proc.stdout, (t) => this.out += t);
    const p2 = pump(this.proc.stderr, (t) => this.err += t);
    this.#done = (async () => {
      const st = await proc.status;
      await Promise.all([p1, p2]);
      this.#check(true);
      return st;
    })();
  }
  #check(ended = false) {
    for (let i = this.#lineWaiters.length - 1; i >= 0; i--) {
      const w = this.#lineWaiters[i];
      if (w.re.test(this.out)) w.res(true);
      else if (ended) w.res(false);
      else continue;
      this.#lineWaiters.splice(i, 1);
    }
  }
  /** true once stdout matches re; false if the program exits first or after timeoutMs */
  waitOut(re: RegExp, timeoutMs: number): Promise<boolean> {
    if (re.test(this.out)) return Promise.resolve(true);
    return new Promise((res) => {
      const t = setTimeout(() => res(false), timeoutMs);
      this.#lineWaiters.push({
        re,
        res: (ok) => {
          clearTimeout(t);
          res(ok);
        },
      });
    });
  }
  signal(sig: Deno.Signal) {
    try {
      this.proc.kill(sig);
    } catch { /* gone */ }
  }
  /** Wait for the exit; SIGKILL and report hung if it takes longer than timeoutMs. */
  async exit(timeoutMs: number): Promise<Exit> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"late">((r) => timer = setTimeout(() => r("late"), timeoutMs));
    const r = await Promise.race([this.#done, expired]);
    clearTimeout(timer);
    if (r === "late") {
      this.signal("SIGKILL");
      const st = await this.#done;
      return { code: st.code, signal: st.signal, hung: true, stdout: this.out, stderr: this.err };
    }
    return { code: r.code, signal: r.signal, hung: false, stdout: this.out, stderr: this.err };
  }
}

/** Run to completion (SIGKILL after timeoutMs: hung). */
export function runProg(
  bin: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<Exit> {
  return new CProc(bin, args, env).exit(timeoutMs);
}

/**
 * Resolve `libvale.so(+0x1234)` frames of a crash backtrace (tests/hostile/common.h
 * prints them) to function and line with addr2line.
 */
export async function symbolize(stderr: string, lib: string): Promise<string> {
  const lines: string[] = [];
  for (const l of stderr.split("\n")) {
    const m = l.match(/(\S*libvale\.so)\(\+(0x[0-9a-f]+)\)/);
    if (!m) {
      if (l.trim()) lines.push(l.trim());
      continue;
    }
    const r = await new Deno.Command("addr2line", {
      // a return address: the call is the byte before
      args: ["-f", "-i", "-C", "-e", lib, `0x${(BigInt(m[2]) - 1n).toString(16)}`],
      stdout: "piped",
      stderr: "null",
    }).output().catch(() => null);
    const txt = r ? new TextDecoder().decode(r.stdout).trim().split("\n") : [];
    const pairs: string[] = [];
    for (let i = 0; i + 1 < txt.length; i += 2) {
      pairs.push(`${txt[i]} ${txt[i + 1].replace(/^.*c-src\//, "c-src/")}`);
    }
    lines.push(`libvale.so+${m[2]}: ${pairs.join(" <- ") || "?"}`);
  }
  return lines.join("\n");
}
