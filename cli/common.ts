/**
 * What the command-line tools share: a getopt with GNU semantics (what
 * netmap's tools get from glibc: clustered flags `-vW`, attached values
 * `-l60`, options after operands, `--`), netmap's `D()` log line, its
 * `norm()` number formatting, and writing to stdout/stderr.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";

const enc = new TextEncoder();

/** Write text to stdout, all of it. */
export function out(s: string): void {
  writeAll(Deno.stdout, enc.encode(s));
}

/** Write text to stderr, all of it. */
export function err(s: string): void {
  writeAll(Deno.stderr, enc.encode(s));
}

function writeAll(w: { writeSync(p: Uint8Array): number }, b: Uint8Array): void {
  let o = 0;
  while (o < b.length) o += w.writeSync(b.subarray(o));
}

/**
 * netmap's `D(fmt, ...)` from its tools: `SSS.UUUUUU function [line] message`
 * on stderr, where SSS.UUUUUU is the wall clock's seconds modulo 1000 and
 * microseconds. Scripts written for netmap cut these lines by field, so the
 * prefix keeps netmap's shape.
 */
export function D(fn: string, line: number, msg: string): void {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const sec = Math.floor(us / 1e6) % 1000, usec = us % 1e6;
  err(
    `${String(sec).padStart(3, "0")}.${String(usec).padStart(6, "0")} ${fn} [${line}] ${msg}\n`,
  );
}

/**
 * netmap's `norm()`: `14.875 M` (three decimals and a unit prefix), or with
 * `normalize` false (pkt-gen -N) the raw number and no prefix (`14875000 `).
 * Callers append the unit (`pps`, `bps`).
 */
export function norm(val: number, normalize: boolean): string {
  const units = ["", "K", "M", "G", "T"];
  let i = 0;
  if (normalize) {
    while (val >= 1000 && i < units.length - 1) {
      val /= 1000;
      i++;
    }
    return `${val.toFixed(3)} ${units[i]}`;
  }
  return `${val.toFixed(0)} `;
}

/** One parsed option: the short letter (or long name) and its argument. */
export interface Opt {
  /** `i` for `-i`, `json` for `--json`. */
  opt: string;
  /** The option's argument, if it takes one. */
  arg?: string;
}

/** A long option: its name and whether it takes an argument. */
export interface LongOpt {
  /** Name without the dashes. */
  name: string;
  /** `none`, `required` (`--x=V` or `--x V`) or `optional` (`--x=V` only). */
  arg: "none" | "required" | "optional";
}

/** Result of {@link getopt}. */
export interface GetoptResult {
  /** Options in command-line order. */
  opts: Opt[];
  /** Arguments that are not options, in order. */
  operands: string[];
  /** glibc's message for the first bad option, if any (`pkt-gen: invalid option -- 'q'`). */
  error?: string;
  /** The letter of the first bad option (for netmap's "bad option" line). */
  badOpt?: string;
}

/**
 * GNU getopt_long over `args`. `optstring` as in C: a letter, `:` after one
 * that takes an argument, `::` for an optional one (taken when attached,
 * `-lvale0`, or, unlike glibc, when the next word does not start with `-`).
 */
export function getopt(
  prog: string,
  args: string[],
  optstring: string,
  longopts: LongOpt[] = [],
): GetoptResult {
  const spec = new Map<string, "none" | "required" | "optional">();
  for (let i = 0; i < optstring.length; i++) {
    const c = optstring[i];
    if (c === ":") continue;
    if (optstring[i + 1] === ":") spec.set(c, optstring[i + 2] === ":" ? "optional" : "required");
    else spec.set(c, "none");
  }
  const res: GetoptResult = { opts: [], operands: [] };
  const fail = (msg: string, opt: string) => {
    res.error ??= `${prog}: ${msg}`;
    res.badOpt ??= opt;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      res.operands.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const matches = longopts.filter((l) => l.name.startsWith(name));
      const lo = longopts.find((l) => l.name === name) ??
        (matches.length === 1 ? matches[0] : undefined);
      if (!lo) {
        fail(
          matches.length > 1 ? `option '${a}' is ambiguous` : `unrecognized option '${a}'`,
          name,
        );
        continue;
      }
      if (lo.arg === "none") {
        if (eq >= 0) fail(`option '--${lo.name}' doesn't allow an argument`, lo.name);
        else res.opts.push({ opt: lo.name });
      } else if (eq >= 0) {
        res.opts.push({ opt: lo.name, arg: a.slice(eq + 1) });
      } else if (lo.arg === "required") {
        if (i + 1 < args.length) res.opts.push({ opt: lo.name, arg: args[++i] });
        else fail(`option '--${lo.name}' requires an argument`, lo.name);
      } else {
        res.opts.push({ opt: lo.name });
      }
      continue;
    }
    if (a.length < 2 || a[0] !== "-") {
      res.operands.push(a);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      const kind = spec.get(c);
      if (kind === undefined) {
        fail(`invalid option -- '${c}'`, c);
        continue;
      }
      if (kind === "none") {
        res.opts.push({ opt: c });
        continue;
      }
      const rest = a.slice(j + 1);
      if (rest) res.opts.push({ opt: c, arg: rest });
      else if (kind === "required") {
        if (i + 1 < args.length) res.opts.push({ opt: c, arg: args[++i] });
        else fail(`option requires an argument -- '${c}'`, c);
      } else if (i + 1 < args.length && !args[i + 1].startsWith("-")) {
        res.opts.push({ opt: c, arg: args[++i] });
      } else {
        res.opts.push({ opt: c });
      }
      break;
    }
  }
  return res;
}

/** C's atoi(): leading blanks, optional sign, digits; 0 when there are none. */
export function atoi(s: string | undefined): number {
  const m = /^\s*([+-]?\d+)/.exec(s ?? "");
  return m ? parseInt(m[1], 10) : 0;
}

/** The ring and slot setting of `-C tx_slots[,rx_slots[,tx_rings[,rx_rings]]]` (netmap's parse_nmr_config). */
export interface NmrConfig {
  /** Slots per TX ring, 0 = default. */
  txSlots: number;
  /** Slots per RX ring, 0 = default. */
  rxSlots: number;
  /** TX rings, 0 = default. */
  txRings: number;
  /** RX rings, 0 = default. */
  rxRings: number;
}

/**
 * netmap's parse_nmr_config(): 1 to 4 comma-separated numbers (strtok, so
 * empty fields are skipped; atoi, so junk is 0 = default); one number sets
 * both slot counts, a third without a fourth sets both ring counts.
 */
export function parseNmrConfig(conf: string): NmrConfig {
  const c: NmrConfig = { txSlots: 0, rxSlots: 0, txRings: 0, rxRings: 0 };
  conf.split(",").filter((t) => t.length > 0).forEach((tok, i) => {
    const v = atoi(tok);
    if (i === 0) c.txSlots = c.rxSlots = v;
    else if (i === 1) c.rxSlots = v;
    else if (i === 2) c.txRings = c.rxRings = v;
    else if (i === 3) c.rxRings = v;
  });
  return c;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The options of a {@link parseCommand} command (`-h`/`--help` is added). */
export type CommandOptions = NonNullable<ParseArgsConfig["options"]>;

type HelpOption = { help: { type: "boolean"; short: "h" } };

/** What {@link parseCommand} returns for options `O`: node's parseArgs result. */
export type ParsedCommand<O extends CommandOptions> = ReturnType<
  typeof parseArgs<{ args: string[]; allowPositionals: true; options: O & HelpOption }>
>;

/**
 * The front of every `vale` subcommand written with node's `parseArgs`:
 * positionals allowed, `-h`/`--help` prints `usage` to stdout and returns
 * status 0, a bad option prints `tool: message` and the usage to stderr and
 * returns `badStatus`. Otherwise the parsed values and positionals.
 */
export function parseCommand<O extends CommandOptions>(
  tool: string,
  usage: string,
  args: string[],
  options: O,
  badStatus = 1,
): ParsedCommand<O> | number {
  let p;
  try {
    p = parseArgs({
      args,
      allowPositionals: true,
      options: { ...options, help: { type: "boolean", short: "h" } } as O & HelpOption,
    });
  } catch (e) {
    err(`${tool}: ${(e as Error).message}\n${usage}`);
    return badStatus;
  }
  if ((p.values as { help?: boolean }).help) {
    out(usage);
    return 0;
  }
  return p;
}
