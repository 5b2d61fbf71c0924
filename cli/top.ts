/**
 * vale top: a live view of one or all switches — per port rates in and out
 * (pps, bit/s), drops by reason, RX ring occupancy, owner, kind, MAC table
 * size — refreshed every interval. On a terminal it is full-screen and
 * sortable (keys), quits on q or Ctrl-C and restores the terminal; otherwise
 * it prints one line per port per interval (key=value, for scripts), or with
 * --json one JSON snapshot per line. The numbers come from lib/tools/top.ts.
 *
 * @module
 */
import {
  si,
  SORT_KEYS,
  type SortKey,
  sortPorts,
  TopSampler,
  type TopSnapshot,
} from "../lib/tools/top.ts";
import { err, out, parseCommand } from "./common.ts";

/** The usage text. */
export const USAGE =
  `Usage: vale top [SWITCH...] [-i SECONDS] [-n COUNT] [-s KEY] [--json | --plain]

A live view of the switches (all of them, or those named): per port the
frames and bits per second received (RX, delivered to the port) and sent (TX,
into the switch), drops per second and since creation by reason, frames
waiting in its RX rings, the owner process and what kind of port it is; per
switch the lookup module and the MAC table size.

Options:
  -i, --interval SECONDS  refresh interval (default 1)
  -n, --count COUNT       exit after COUNT refreshes (default: until q / Ctrl-C)
  -s, --sort KEY          order of ports: pps (default), bps, drops, queue, name
  -r, --reverse           reverse the order
      --json              one JSON snapshot per line (NDJSON), for programs
      --plain             one line per port per interval even on a terminal
  -h, --help              this text

On a terminal: keys p b d o n sort by pps, bit/s, drops, occupancy, name;
r reverses; q or Ctrl-C quits and restores the terminal. Without a terminal
(or with --plain) each interval prints one line per port:
  time=… switch=vale0 port=a kind=port owner=4242 rx_pps=… rx_bps=… tx_pps=…
  tx_bps=… drops_ps=… drops=… ring_full=… … rx_queued=… rx_room=…
Rates need two readings: the first lines come after one interval.
Environment: VALE_RUN_DIR, where switches live (default /dev/shm/vale).
`;

const KEYS: Record<string, SortKey> = { p: "pps", b: "bps", d: "drops", o: "queue", n: "name" };

/** The full-screen text of one snapshot, cut to the terminal's size. */
export function renderScreen(
  s: TopSnapshot,
  sort: SortKey,
  reverse: boolean,
  cols: number,
  rows: number,
): string {
  const nports = s.switches.reduce((n, w) => n + w.ports.length, 0);
  const lines = [
    `vale top — ${s.switches.length} switch${s.switches.length === 1 ? "" : "es"}, ${nports} port${
      nports === 1 ? "" : "s"
    } — ${s.time.slice(11, 19)} — sort: ${sort}${reverse ? " (reversed)" : ""}` +
    "   keys: p b d o n sort, r reverse, q quit",
    "",
  ];
  if (!s.switches.length) lines.push("no switches");
  const head = [
    "PORT".padEnd(16),
    "KIND".padEnd(14),
    "OWNER".padStart(7),
    "RX pps".padStart(8),
    "RX bit/s".padStart(9),
    "TX pps".padStart(8),
    "TX bit/s".padStart(9),
    "drop/s".padStart(7),
    "drops".padStart(8),
    "RING".padStart(11),
    "  DROPS BY REASON",
  ].join(" ");
  for (const w of s.switches) {
    if (w.error) {
      lines.push(`switch ${w.name}: ${w.error}`, "");
      continue;
    }
    lines.push(
      `switch ${w.name}   lookup ${w.lookup}   macs ${w.macs}   ports ${w.ports.length}`,
      head,
    );
    for (const p of sortPorts([...w.ports], sort, reverse)) {
      const total = Object.values(p.drops).reduce((a, b) => a + b, 0);
      const reasons = Object.entries(p.drops).filter(([, v]) => v).map(([k, v]) => `${k}:${si(v)}`)
        .join(" ");
      lines.push([
        p.name.slice(0, 16).padEnd(16),
        p.kind.slice(0, 14).padEnd(14),
        (p.owner_pid ? String(p.owner_pid) : "-").padStart(7),
        si(Math.round(p.rx_pps)).padStart(8),
        si(Math.round(p.rx_bps)).padStart(9),
        si(Math.round(p.tx_pps)).padStart(8),
        si(Math.round(p.tx_bps)).padStart(9),
        si(Math.round(p.drops_ps)).padStart(7),
        si(total).padStart(8),
        `${p.rx_queued}/${p.rx_room}`.padStart(11),
        reasons ? `  ${reasons}` : "",
      ].join(" "));
    }
    lines.push("");
  }
  return lines.slice(0, rows).map((l) => l.slice(0, cols)).join("\x1b[K\r\n") + "\x1b[K\x1b[J";
}

/** The lines of one snapshot for scripts: one per port, key=value. */
export function renderLines(s: TopSnapshot, sort: SortKey, reverse: boolean): string {
  const out: string[] = [];
  const q = (v: string) => /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  for (const w of s.switches) {
    if (w.error) {
      out.push(`time=${s.time} switch=${q(w.name)} error=${q(w.error)}`);
      continue;
    }
    for (const p of sortPorts([...w.ports], sort, reverse)) {
      const total = Object.values(p.drops).reduce((a, b) => a + b, 0);
      out.push(
        [
          `time=${s.time}`,
          `switch=${q(w.name)}`,
          `port=${q(p.name)}`,
          `kind=${q(p.kind)}`,
          `owner=${p.owner_pid}`,
          `rx_pps=${Math.round(p.rx_pps)}`,
          `rx_bps=${Math.round(p.rx_bps)}`,
          `tx_pps=${Math.round(p.tx_pps)}`,
          `tx_bps=${Math.round(p.tx_bps)}`,
          `drops_ps=${Math.round(p.drops_ps)}`,
          `drops=${total}`,
          ...Object.entries(p.drops).map(([k, v]) => `${k}=${v}`),
          `rx_queued=${p.rx_queued}`,
          `rx_room=${p.rx_room}`,
          `macs=${w.macs}`,
        ].join(" "),
      );
    }
  }
  return out.length ? out.join("\n") + "\n" : "";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** vale top's main(); returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const v = parseCommand("vale top", USAGE, args, {
    interval: { type: "string", short: "i" },
    count: { type: "string", short: "n" },
    sort: { type: "string", short: "s" },
    reverse: { type: "boolean", short: "r" },
    json: { type: "boolean" },
    plain: { type: "boolean" },
  });
  if (typeof v === "number") return v;
  const o = v.values;
  const interval = o.interval === undefined ? 1 : Number(o.interval);
  if (!(interval >= 0.1 && interval <= 3600)) {
    err(`vale top: bad interval '${o.interval}': seconds from 0.1 to 3600\n`);
    return 1;
  }
  const count = o.count === undefined ? Infinity : Number(o.count);
  if (!(Number.isInteger(count) && count > 0) && count !== Infinity) {
    err(`vale top: bad count '${o.count}': a positive integer\n`);
    return 1;
  }
  let sort = (o.sort ?? "pps") as SortKey;
  if (!SORT_KEYS.includes(sort)) {
    err(`vale top: bad sort key '${o.sort}': one of ${SORT_KEYS.join(", ")}\n`);
    return 1;
  }
  if (o.json && o.plain) {
    err("vale top: --json and --plain exclude each other\n");
    return 1;
  }
  let reverse = !!o.reverse;
  const sampler = new TopSampler(v.positionals);
  // the first reading: rates start from here; a named switch that is not
  // there fails now, clearly
  const first = sampler.sample();
  const bad = first.switches.find((w) => w.error);
  if (bad && v.positionals.length) {
    err(`vale top: ${bad.error}\n`);
    return 1;
  }
  const tty = !o.json && !o.plain && Deno.stdout.isTerminal() && Deno.stdin.isTerminal();

  if (!tty) {
    // for scripts: a line (or a JSON object) per port per interval until the
    // count or a signal; SIGINT/SIGTERM end it between two intervals.
    let stop = false;
    const onSig = () => stop = true;
    Deno.addSignalListener("SIGINT", onSig);
    Deno.addSignalListener("SIGTERM", onSig);
    try {
      for (let i = 0; i < count && !stop; i++) {
        for (let t = 0; t < interval * 1000 && !stop; t += 50) await sleep(50);
        if (stop) break;
        const s = sampler.sample();
        out(o.json ? JSON.stringify(s) + "\n" : renderLines(s, sort, reverse));
      }
    } finally {
      Deno.removeSignalListener("SIGINT", onSig);
      Deno.removeSignalListener("SIGTERM", onSig);
    }
    return 0;
  }

  // full screen: alternate screen, no cursor, keys read raw
  let quit = false;
  let redraw = true;
  const restore = () => {
    out("\x1b[?25h\x1b[?1049l");
    try {
      Deno.stdin.setRaw(false);
    } catch { /* stdin gone */ }
  };
  const onSig = () => quit = true;
  Deno.addSignalListener("SIGINT", onSig);
  Deno.addSignalListener("SIGTERM", onSig);
  Deno.stdin.setRaw(true);
  out("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");
  const keys = (async () => {
    const buf = new Uint8Array(64);
    while (!quit) {
      const n = await Deno.stdin.read(buf).catch(() => null);
      if (n === null) break;
      for (const c of buf.subarray(0, n)) {
        const ch = String.fromCharCode(c);
        if (ch === "q" || ch === "Q" || c === 3 || c === 4) quit = true;
        else if (ch === "r") reverse = !reverse;
        else if (KEYS[ch]) sort = KEYS[ch];
        else continue;
        redraw = true;
      }
    }
  })();
  let last: TopSnapshot = first;
  try {
    for (let i = 0; i < count && !quit;) {
      if (redraw) {
        const { columns, rows } = Deno.consoleSize();
        out("\x1b[H" + renderScreen(last, sort, reverse, columns, rows));
        redraw = false;
      }
      for (let t = 0; t < interval * 1000 && !quit && !redraw; t += 25) await sleep(25);
      if (quit || redraw) continue;
      last = sampler.sample();
      redraw = true;
      i++;
      if (i >= count) {
        const { columns, rows } = Deno.consoleSize();
        out("\x1b[H" + renderScreen(last, sort, reverse, columns, rows));
      }
    }
  } finally {
    quit = true;
    Deno.removeSignalListener("SIGINT", onSig);
    Deno.removeSignalListener("SIGTERM", onSig);
    restore();
  }
  void keys; // a pending read ends with the process
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
