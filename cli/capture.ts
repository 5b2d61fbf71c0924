/**
 * vale capture: write what reaches a switch port to a pcap file that
 * tcpdump, tshark and Wireshark read.
 *
 *   vale capture vale0:mon -w out.pcap [-c COUNT] [-G SECONDS] [-s SNAPLEN] [-q]
 *
 * The capture port is an ordinary port of the switch: it receives broadcast,
 * multicast and unknown-unicast frames (everything the learning bridge
 * floods) and unicast addressed to it. Ctrl-C stops it cleanly, as tcpdump.
 *
 * @module
 */
import { openPort } from "../lib/open.ts";
import { PcapWriter } from "../lib/formats/pcap.ts";
import { err, parseCommand } from "./common.ts";

/** The usage text. */
export const USAGE = `Usage: vale capture PORT -w FILE [-c COUNT] [-G SECONDS] [-s SNAPLEN] [-q]

Write the frames that reach PORT (a switch port, created for the capture if it
does not exist, e.g. vale0:mon) to FILE in pcap format ('-' for stdout, e.g.
to pipe into 'tcpdump -r -'). The port sees what the learning bridge floods
(broadcast, multicast, unknown destinations) and unicast sent to it.

Options:
  -w FILE      pcap file to write (truncated); '-' is standard output
  -c COUNT     stop after COUNT frames
  -G SECONDS   stop after SECONDS
  -s SNAPLEN   bytes kept of each frame (default 262144: all)
  -q           no progress line on stderr
  -h, --help   this text

Stops on Ctrl-C (SIGINT) or SIGTERM, flushing the file; prints how many frames
were captured, as tcpdump does.
`;

/** vale capture's main(); returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const v = parseCommand("vale capture", USAGE, args, {
    w: { type: "string", short: "w" },
    c: { type: "string", short: "c" },
    G: { type: "string", short: "G" },
    s: { type: "string", short: "s" },
    q: { type: "boolean", short: "q" },
  });
  if (typeof v === "number") return v;
  const o = v.values;
  if (v.positionals.length !== 1 || !o.w) {
    err(USAGE);
    return 1;
  }
  const num = (s: string | undefined, what: string, min: number): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n < min) throw new Error(`bad ${what} '${s}'`);
    return n;
  };
  let count: number | undefined, seconds: number | undefined, snaplen: number | undefined;
  try {
    count = num(o.c, "count (-c)", 1);
    seconds = num(o.G, "duration (-G)", 0.001);
    snaplen = num(o.s, "snaplen (-s)", 14);
  } catch (e) {
    err(`vale capture: ${(e as Error).message}\n`);
    return 1;
  }
  const name = v.positionals[0];
  let port;
  try {
    port = openPort(name);
  } catch (e) {
    err(`vale capture: ${(e as Error).message}\n`);
    return 1;
  }
  const toStdout = o.w === "-";
  let writer: PcapWriter;
  try {
    writer = toStdout
      ? new PcapWriter(Deno.stdout, { snaplen, closeSink: false })
      : await PcapWriter.create(o.w, { snaplen });
  } catch (e) {
    port.close();
    err(`vale capture: cannot write ${o.w}: ${(e as Error).message}\n`);
    return 1;
  }
  let stop = false;
  const onSignal = () => {
    stop = true;
    port.close(); // wakes a pending receive
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  if (!o.q) err(`vale capture: listening on ${name}, writing ${toStdout ? "stdout" : o.w}\n`);
  const t0 = Date.now();
  let n = 0;
  try {
    while (!stop) {
      const left = seconds === undefined ? 1000 : seconds * 1000 - (Date.now() - t0);
      if (left <= 0) break;
      const batch = await port.receive(Math.min(left, 1000));
      for (const f of batch) {
        await writer.write(f);
        if (++n === count) {
          stop = true;
          break;
        }
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await writer.close();
    port.close();
  }
  if (!o.q) err(`${n} packet${n === 1 ? "" : "s"} captured\n`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
