/**
 * bridge: netmap's two-port forwarder, on vale ports and pipes. Everything
 * that arrives on one port leaves by the other, both ways; buffers are
 * swapped (zero-copy) when both ports share one memory region and copied
 * otherwise. The loop is C (c-src/apps/bridge.c); this file parses arguments,
 * opens the ports and prints.
 *
 *   bridge -i vale0:up -i vale1:down
 *
 * @module
 */
import { Bridge } from "../lib/tools/bridge.ts";
import { openPort } from "../lib/open.ts";
import type { Port } from "../lib/switch/port.ts";
import { atoi, D, err, getopt, out, sleep } from "./common.ts";

/** The usage text (`bridge -h`, `bridge --help`). */
export const USAGE = `netmap bridge program: forward packets between two network interfaces
    usage(1): bridge [-v] [-i ifa] [-i ifb] [-b burst] [-w wait_time] [-L] [-c]
    usage(2): bridge [-v] [-w wait_time] [-L] [-c] [ifa [ifb [burst]]]

    ifa and ifb are port names (valeX:Y switch ports, valeX:Y{N / valeX:Y}N pipe
    ends, with netmap's suffixes). Every packet that arrives on ifa is sent out of
    ifb and the other way round.
    When ifb is missing (or is equal to ifa), bridge will
    forward between ifa and the host stack if -L
    is not specified, otherwise loopback traffic on ifa
    (vale ports have no host stack: use -L).

    -i port     a port (give it twice)
    -b burst    slots moved per ring pass, 1..8192 (default 1024)
    -w seconds  wait before forwarding, at most 100 (default 4 for kernel
                interfaces, 0 for vale ports, which have no link to come up)
    -c          never zero-copy: copy every packet even when buffers could be
                swapped
    -L          loopback: with one port, send what it receives back out of it
    -v          verbose: a line per second with the counts of each direction
    -h, --help  this text

    Zero-copy (buffer swapping) is used when both ports live in one memory
    region: the two ends of a pipe, or one port looped back (-L). Between two
    switch ports, or a switch port and a pipe, packets are copied. bridge says
    which at start ("------- zerocopy supported" / "NOT supported").
    Slots longer than a buffer are forwarded with length 0, as netmap does.
    Ctrl-C (SIGINT) stops it; the packet and byte counts of each direction are
    printed on stderr.

    example: bridge -i vale0:left -i vale1:right
    Environment: VALE_RUN_DIR, where switches live (default /dev/shm/vale).
`;

function usage(): number {
  err(USAGE);
  return 1;
}

function builtLine(): string {
  let when = "";
  try {
    const m = Deno.statSync(new URL("../build/libvale.so", import.meta.url)).mtime;
    if (m) {
      const s = m.toString().split(" "); // Sat Nov 22 2025 00:57:12 GMT...
      when = `${s[1]} ${s[2]} ${s[3]} ${s[4]}`;
    }
  } catch { /* not built in this checkout */ }
  return `bridge built ${when}\n\n`;
}

/** bridge's main(); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  err(builtLine());
  const g = getopt("bridge", argv, "hb:ci:vw:L", [{ name: "help", arg: "none" }]);
  if (g.error) {
    err(`${g.error}\n`);
    D("main", 263, `bad option ${g.badOpt} (null)`);
    return usage();
  }
  let burst = 1024, waitLink = -1, verbose = 0, loopback = false, zerocopy = true;
  let ifa: string | undefined, ifb: string | undefined;
  for (const { opt, arg } of g.opts) {
    switch (opt) {
      case "h":
        err(USAGE);
        return 0;
      case "help":
        out(USAGE);
        return 0;
      case "b":
        burst = atoi(arg);
        break;
      case "i":
        if (ifa === undefined) ifa = arg;
        else if (ifb === undefined) ifb = arg;
        else D("main", 280, `${arg} ignored, already have 2 interfaces`);
        break;
      case "c":
        zerocopy = false;
        break;
      case "v":
        verbose++;
        break;
      case "w":
        waitLink = atoi(arg);
        break;
      case "L":
        loopback = true;
        break;
    }
  }
  const ops = g.operands;
  if (ops.length > 0) ifa = ops[0];
  if (ops.length > 1) ifb = ops[1];
  if (ops.length > 2) burst = atoi(ops[2]);
  if (ops.length > 3) return usage();
  if (!ifb) ifb = ifa;
  if (!ifa) {
    D("main", 318, "missing interface");
    return usage();
  }
  if (burst < 1 || burst > 8192) {
    D("main", 322, `invalid burst ${burst}, set to 1024`);
    burst = 1024;
  }
  if (waitLink < 0) waitLink = ifa.startsWith("vale") && ifb!.startsWith("vale") ? 0 : 4;
  if (waitLink > 100) {
    D("main", 326, `invalid wait_link ${waitLink}, set to 4`);
    waitLink = 4;
  }
  const same = ifa === ifb;
  if (same) {
    if (!loopback) {
      D("main", 331, "same interface, endpoint 0 goes to host");
      ifa = `${ifa}^`;
    } else {
      D("main", 335, "same interface, loopbacking traffic");
    }
  }

  let pa: Port, pb: Port | undefined;
  try {
    pa = openPort(ifa);
  } catch (e) {
    D("main", 343, `cannot open ${ifa}: ${(e as Error).message}`);
    return 1;
  }
  if (!(same && loopback)) {
    try {
      pb = openPort(ifb!);
    } catch (e) {
      D("main", 349, `cannot open ${ifb}: ${(e as Error).message}`);
      pa.close();
      return 1;
    }
  }
  let br: Bridge;
  try {
    br = new Bridge(pa, pb, { burst, zeroCopy: zerocopy });
  } catch (e) {
    D("main", 355, (e as Error).message);
    pa.close();
    pb?.close();
    return 1;
  }
  const onSigint = () => br.stop();
  Deno.addSignalListener("SIGINT", onSigint);
  D("main", 356, `------- zerocopy ${br.zeroCopy ? "" : "NOT "}supported`);
  D("main", 364, `Wait ${waitLink} secs for link to come up...`);
  if (waitLink > 0) await sleep(waitLink * 1000);
  const desc = (p: Port) =>
    `${p.name} 0x${(p.rxRings[0]?.index ?? 0).toString(16)}/${p.rxRings.length}`;
  D("main", 366, `Ready to go, ${desc(pa)} <-> ${desc(pb ?? pa)}.`);

  const running = br.run();
  let ticker: ReturnType<typeof setInterval> | undefined;
  if (verbose) {
    let prev = br.stats(), t0 = performance.now();
    ticker = setInterval(() => {
      const s = br.stats(), now = performance.now(), dt = (now - t0) / 1000;
      const rate = (d: 0 | 1) => Math.round((s[d].packets - prev[d].packets) / dt);
      D(
        "main",
        400,
        pb
          ? `${pa.name} -> ${pb.name} ${s[0].packets} pkts (${rate(0)} pps), ` +
            `${pb.name} -> ${pa.name} ${s[1].packets} pkts (${rate(1)} pps)`
          : `${pa.name} loopback ${s[0].packets} pkts (${rate(0)} pps)`,
      );
      prev = s;
      t0 = now;
    }, 1000);
  }
  const rc = await running;
  if (ticker !== undefined) clearInterval(ticker);
  Deno.removeSignalListener("SIGINT", onSigint);
  const [ab, ba] = br.stats();
  const dir = (from: string, to: string, d: typeof ab) =>
    `${from} -> ${to}: ${d.packets} packets ${d.bytes} bytes` +
    (d.badLength ? ` (${d.badLength} slots with a bad length sent empty)` : "");
  D(
    "main",
    420,
    pb
      ? `${dir(pa.name, pb.name, ab)}; ${dir(pb.name, pa.name, ba)}`
      : `${dir(pa.name, pa.name, ab)}`,
  );
  br.close();
  pb?.close();
  pa.close();
  if (rc < 0) {
    D("main", 425, `forwarding failed: error ${-rc}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
