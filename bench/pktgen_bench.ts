// pkt-gen tx -> vale0 -> pkt-gen rx, as separate processes, driven from Deno
// (bin/pkt-gen) and from pure C (bench/c/pktgen_c.c: the same C loop, and the
// smallest loop doing the same work), for 60- and 1514-byte frames; median of
// N runs, interleaved so that load from other processes hits all of them.
//
//   deno run -A bench/pktgen_bench.ts [--runs 3] [--sizes 60,1514] [--seconds 3]
//
// The rate is the receiver's: packets received / time from its first to its
// last packet (the sender is faster; what does not fit is dropped and counted
// by the switch). The receiver runs on CPU 1, the sender on CPU 0 (pkt-gen's
// -a for its loop thread; taskset for the one-thread C driver).
// The machine's load average is printed with each result: numbers taken
// while other benchmarks run are not worth much.
import { parseArgs } from "node:util";
import { buildLibrary } from "../scripts/build.ts";

const root = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    sizes: { type: "string", default: "60,1514" },
    seconds: { type: "string", default: "3" },
  },
});
const RUNS = +values.runs!, SIZES = values.sizes!.split(",").map(Number), SECS = +values.seconds!;

await buildLibrary({ quiet: true });
const cbin = `${root}build/pktgen_c`;
{
  const src = `${root}bench/c/pktgen_c.c`;
  const stale = (() => {
    try {
      return Deno.statSync(cbin).mtime! < Deno.statSync(src).mtime! ||
        Deno.statSync(cbin).mtime! < Deno.statSync(`${root}build/libvale.so`).mtime!;
    } catch {
      return true;
    }
  })();
  if (stale) {
    const r = await new Deno.Command("cc", {
      args: ["-O2", "-o", cbin, src, `-L${root}build`, "-lvale", `-Wl,-rpath,${root}build`],
    }).output();
    if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  }
}

/** CPU time the whole machine spends busy, as a fraction, over `ms`. */
async function busy(ms: number): Promise<number> {
  const sample = () => {
    const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(
      Number,
    );
    const idle = f[3] + f[4];
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = sample();
  await new Promise((r) => setTimeout(r, ms));
  const b = sample();
  return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
}

/** Wait (up to 2 minutes) until other processes leave the machine idle. */
async function quiet(): Promise<string> {
  const t0 = Date.now();
  let b = 1;
  while (Date.now() - t0 < 120000 && (b = await busy(500)) > 0.1) { /* someone else's benchmark */ }
  return `${Math.round(b * 100)}% busy before`;
}

function load(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

interface Side {
  /** run under taskset (the C driver is one thread) */
  pin: boolean;
  cmd(dir: "tx" | "rx", port: string, count: number, len: number): string[];
  ready: RegExp;
  result(out: string): { pkts: number; secs: number } | null;
}

// pkt-gen pins its loop thread itself (-a), the Deno threads around it stay free
const deno: Side = {
  pin: false,
  cmd: (dir, port, count, len) =>
    dir === "tx"
      ? [`${root}bin/pkt-gen`, "-i", port, "-f", "tx", "-n", `${count}`, "-l", `${len}`, "-a", "0"]
      : [`${root}bin/pkt-gen`, "-i", port, "-f", "rx", "-W", "-a", "1"],
  ready: /reading from|Ready/,
  result(out) {
    const m = out.match(
      /(?:Sent|Received) (\d+) packets \d+ bytes \d+ events \d+ bytes each in ([\d.]+) seconds/,
    );
    return m ? { pkts: +m[1], secs: +m[2] } : null;
  },
};
const c = (mode: "pg" | "raw"): Side => ({
  pin: true,
  cmd: (
    dir,
    port,
    count,
    len,
  ) => [cbin, dir, port, `${dir === "rx" ? 1e12 : count}`, `${len}`, mode],
  ready: /ready/,
  result(out) {
    const m = out.match(/result pkts=(\d+) bytes=\d+ secs=([\d.]+)/);
    return m ? { pkts: +m[1], secs: +m[2] } : null;
  },
});

async function once(side: Side, len: number): Promise<{ rx: number; tx: number }> {
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-bench-pg-" });
  const env = { VALE_RUN_DIR: dir };
  try {
    const count = Math.round((len <= 128 ? 12e6 : 3e6) * SECS);
    // each process on its own CPU (taskset), as the peers are measured
    const pin = (cpu: number, cmd: string[]) => side.pin ? ["-c", `${cpu}`, ...cmd] : cmd;
    const rxCmd = pin(1, side.cmd("rx", "vale0:rx", 0, len));
    const rx = new Deno.Command(side.pin ? "taskset" : rxCmd.shift()!, {
      args: rxCmd,
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // wait until the receiver has its port open
    let out = "", errs = "";
    const dec = new TextDecoder();
    const pump = (async () => {
      for await (const b of rx.stdout) out += dec.decode(b);
    })();
    const pumpErr = (async () => {
      for await (const b of rx.stderr) errs += dec.decode(b);
    })();
    const t0 = Date.now();
    while (!side.ready.test(out + errs) && Date.now() - t0 < 10000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const [tc, ...ta] = side.cmd("tx", "vale0:tx", count, len);
    const tx = await new Deno.Command(tc, { args: ta, env, stdout: "piped", stderr: "piped" })
      .output();
    const txr = side.result(dec.decode(tx.stdout));
    await rx.status;
    await Promise.all([pump, pumpErr]);
    const rxr = side.result(out);
    if (!txr || !rxr) throw new Error(`no result:\n${dec.decode(tx.stderr)}\n${errs}`);
    return { rx: rxr.pkts / rxr.secs / 1e6, tx: txr.pkts / txr.secs / 1e6 };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const sides: [string, Side][] = [["deno", deno], ["c-pg", c("pg")], ["c-raw", c("raw")]];
console.log(`pkt-gen tx -> vale0 -> pkt-gen rx, ${RUNS} runs each, load ${load()}`);
for (const len of SIZES) {
  const res: Record<string, { rx: number[]; tx: number[] }> = {};
  for (let r = 0; r < RUNS; r++) {
    for (const [name, side] of sides) {
      const q = await quiet();
      const x = await once(side, len);
      (res[name] ??= { rx: [], tx: [] }).rx.push(x.rx);
      res[name].tx.push(x.tx);
      console.log(
        `  ${len} B ${name.padEnd(5)} run ${r + 1}: rx ${x.rx.toFixed(2)} Mpps, tx ${
          x.tx.toFixed(2)
        } Mpps  (${q}, load ${load()})`,
      );
    }
  }
  const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v.rx)]));
  const gbps = (mpps: number) => (mpps * len * 8 / 1000).toFixed(2);
  console.log(
    `${len} B: deno ${m.deno.toFixed(2)} Mpps (${gbps(m.deno)} Gbit/s), c-pg ${
      m["c-pg"].toFixed(2)
    }, ` +
      `c-raw ${m["c-raw"].toFixed(2)} Mpps; deno/c-pg ${(m.deno / m["c-pg"]).toFixed(3)}, ` +
      `deno/c-raw ${(m.deno / m["c-raw"]).toFixed(3)}`,
  );
}
