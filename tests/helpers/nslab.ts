/**
 * Commands and traffic in network namespaces, for the kernel tests: `sh`, `ip`,
 * netload.ts (exact TCP/UDP accounting) run inside a namespace, a transfer from
 * one namespace's source to another's sink, and ping's loss.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { PortInfo } from "../../lib/switch/control.ts";
import { portOf, readUntil } from "./tools.ts";

const dec = new TextDecoder();
const NETLOAD = new URL("./netload.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** A command's outcome. */
export interface Out {
  ok: boolean;
  /** Exit status. */
  code: number;
  out: string;
  err: string;
}

/** Runs a command to its end (killed after ms). */
export async function sh(
  cmd: string,
  args: string[],
  ms = 30000,
  env?: Record<string, string>,
): Promise<Out> {
  const r = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    env,
    signal: AbortSignal.timeout(ms),
  }).output();
  return { ok: r.success, code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** `ip ARGS`; throws with ip's message when it fails. */
export async function ip(...args: string[]): Promise<string> {
  const r = await sh("ip", args);
  if (!r.ok) throw new Error(`ip ${args.join(" ")}: ${r.err.trim()}`);
  return r.out;
}

/** netload.ts (tests/helpers/netload.ts) running in namespace `ns`. */
export function netload(ns: string, args: string[], ms: number): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", "--unstable-net", NETLOAD, ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).spawn();
}

/** Starts netload's `sink` in namespace nsRx, then its `source` in nsTx; the sink's JSON result. */
export async function nsTransfer(
  nsRx: string,
  nsTx: string,
  sink: string[],
  source: string[],
  ms: number,
): Promise<Record<string, number>> {
  const s = netload(nsRx, sink, ms);
  const out = s.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = await readUntil(out, "", "listening");
    assert.match(text, /listening/, "the sink started");
    const src = await sh(
      "ip",
      ["netns", "exec", nsTx, Deno.execPath(), "run", "-A", "--unstable-net", NETLOAD, ...source],
      ms,
    );
    assert.ok(src.ok, src.err);
    text = await readUntil(out, text, "}");
    return JSON.parse(text.slice(text.indexOf("{")));
  } finally {
    out.releaseLock();
    try {
      s.kill("SIGKILL");
    } catch { /* done */ }
    await s.status.catch(() => {});
  }
}

/** ping from namespace ns (-n -q), as it ran. */
export function nsPingRun(
  ns: string,
  dst: string,
  { count = 3, interval = "0.2", wait = "2", extra = [] as string[] } = {},
): Promise<Out> {
  return sh("ip", [
    "netns",
    "exec",
    ns,
    "ping",
    "-n",
    "-q",
    "-c",
    `${count}`,
    "-i",
    interval,
    "-W",
    wait,
    ...extra,
    dst,
  ], 30000);
}

/** Namespace ns pings dst `count` times with `size`-byte payloads: the loss in percent, as text. */
export async function nsPing(
  ns: string,
  dst: string,
  size = 56,
  { count = 3, interval = "0.2", wait = "2" } = {},
): Promise<string> {
  const r = await nsPingRun(ns, dst, { count, interval, wait, extra: ["-s", `${size}`] });
  return /(\d+(?:\.\d+)?)% packet loss/.exec(r.out)?.[1] ?? `no answer: ${r.out}${r.err}`;
}

/** bin/vale-ctl ARGS with VALE_RUN_DIR=runDir. */
export function valeCtl(runDir: string, ...args: string[]): Promise<Out> {
  return sh(
    Deno.execPath(),
    ["run", "-A", "--no-lock", "--config", `${ROOT}deno.json`, `${ROOT}cli/vale-ctl.ts`, ...args],
    60000,
    { VALE_RUN_DIR: runDir },
  );
}

/** Port `name` of switch `sw` in runDir (asserted to exist). */
export function requirePort(runDir: string, sw: string, name: string): PortInfo {
  const p = portOf(runDir, sw, name);
  assert.ok(p, `port ${name} on ${sw}`);
  return p;
}
