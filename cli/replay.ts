/**
 * vale replay: send the packets of a pcap or pcapng file into a port, with
 * their original timing (scaled), at a fixed rate, or as fast as possible,
 * looping (netmap's nmreplay, tcpreplay's options). The reverse of
 * `vale capture`. The loop is lib/tools/replay.ts.
 *
 *   vale replay PORT FILE [-x SPEED | -p PPS | -M MBPS | -t] [-l LOOPS] [-L LIMIT] [-q]
 *
 * @module
 */
import { openPort } from "../lib/open.ts";
import { openPcap, PcapError } from "../lib/formats/pcap.ts";
import { Replay, REPLAY_MAX_FRAME, type ReplayStats } from "../lib/tools/replay.ts";
import { err, norm, out, parseCommand } from "./common.ts";

/** The usage text. */
export const USAGE = `Usage: vale replay PORT FILE [-x SPEED | -p PPS | -M MBPS | -t] [-l LOOPS]
                   [-L LIMIT] [-T SECONDS] [-q]

Send the packets of FILE (pcap or pcapng; '-' is standard input) into PORT
(e.g. vale0:a, created if it does not exist; any port name, see vale(4)),
in file order. By default with the spacing they were captured with.

Options:
  -x, --speed SPEED     original timing sped up SPEED times (0.5: half speed)
  -p, --pps PPS         a fixed rate of PPS packets per second
  -M, --mbps MBPS       a fixed rate of MBPS megabits per second (frame bytes)
  -t, --topspeed        as fast as the port takes them
  -l, --loop LOOPS      replay the file LOOPS times (default 1; 0: until Ctrl-C)
  -L, --limit LIMIT     stop after LIMIT packets in all
  -T, --stats SECONDS   progress line on stderr every SECONDS (default 1)
  -q, --quiet           no progress line
  -h, --help            this text

Records that are empty or not Ethernet are skipped and counted. Ctrl-C (or
SIGTERM) stops at the next packet; the final line on stdout says what was
sent in all: "Sent N packets B bytes in T seconds (X pps, Y bps), L loops".
Exit status: 0 sent (also after Ctrl-C), 1 usage, 2 cannot open the port or
the file, 3 the file is damaged (the packets before the damage were sent).
`;

function num(s: string | undefined, what: string, ok: (n: number) => boolean): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n) || !ok(n)) throw new Error(`bad ${what} '${s}'`);
  return n;
}

function line(st: ReplayStats, final: boolean): string {
  const secs = st.seconds > 0 ? st.seconds : 1e-6;
  const rate = `${norm(st.packets / secs, true)}pps ${norm((st.bytes * 8) / secs, true)}bps`;
  return final
    ? `Sent ${st.packets} packets ${st.bytes} bytes in ${st.seconds.toFixed(2)} seconds ` +
      `(${rate}), ${st.loop} loop${st.loop === 1 ? "" : "s"}` +
      (st.skipped ? `, ${st.skipped} records skipped` : "") + (st.stopped ? " (stopped)" : "") +
      "\n"
    : `vale replay: ${st.packets} packets ${st.bytes} bytes, ${rate}, loop ${st.loop}\n`;
}

/** vale replay's main(); returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const v = parseCommand("vale replay", USAGE, args, {
    speed: { type: "string", short: "x" },
    pps: { type: "string", short: "p" },
    mbps: { type: "string", short: "M" },
    topspeed: { type: "boolean", short: "t" },
    loop: { type: "string", short: "l" },
    limit: { type: "string", short: "L" },
    stats: { type: "string", short: "T" },
    quiet: { type: "boolean", short: "q" },
  });
  if (typeof v === "number") return v;
  const o = v.values;
  if (v.positionals.length !== 2) {
    err(USAGE);
    return 1;
  }
  const [name, file] = v.positionals;
  let replay: Replay, port;
  let loops: number, statsS: number;
  try {
    const speed = num(o.speed, "speed (-x)", (n) => n > 0);
    const pps = num(o.pps, "rate (-p)", (n) => n > 0);
    const mbps = num(o.mbps, "rate (-M)", (n) => n > 0);
    loops = num(o.loop, "loop count (-l)", (n) => Number.isInteger(n) && n >= 0) ?? 1;
    const limit = num(o.limit, "limit (-L)", (n) => Number.isInteger(n) && n > 0);
    statsS = num(o.stats, "interval (-T)", (n) => n >= 0.1) ?? 1;
    if ([speed, pps, mbps, o.topspeed || undefined].filter((x) => x !== undefined).length > 1) {
      throw new Error("-x, -p, -M and -t exclude each other");
    }
    if ((file === "-" || !isRegular(file)) && loops !== 1) {
      throw new Error(`-l ${loops}: ${file} can be read only once (not a regular file)`);
    }
    // the options are checked before the port opens (a bad option creates nothing)
    const opts = {
      speed,
      pps,
      bps: mbps === undefined ? undefined : mbps * 1e6,
      topSpeed: o.topspeed,
      loops,
      limit,
      progressMs: statsS * 1000,
      progress: o.quiet ? undefined : (s: ReplayStats) => err(line(s, false)),
    };
    port = openPortOrFail(name);
    replay = new Replay(port, opts);
  } catch (e) {
    const m = (e as Error).message;
    err(`vale replay: ${m}\n`);
    return m.startsWith("cannot open") ? 2 : 1;
  }
  const open = () =>
    file === "-"
      ? readStdin()
      : openPcap(file, { maxRecordLen: REPLAY_MAX_FRAME + 1024 * 1024 }) as AsyncIterable<
        import("../lib/formats/pcap.ts").PcapRecord
      >;
  const onSignal = () => replay.stop();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  if (!o.quiet) {
    err(
      `vale replay: ${file} -> ${name}, ${
        o.topspeed
          ? "as fast as possible"
          : o.pps
          ? `${o.pps} pps`
          : o.mbps
          ? `${o.mbps} Mbit/s`
          : `original timing x${o.speed ?? 1}`
      }, ${loops === 0 ? "looping until stopped" : `${loops} loop${loops === 1 ? "" : "s"}`}\n`,
    );
  }
  let code = 0;
  let st: ReplayStats | undefined;
  try {
    st = await replay.run(open);
  } catch (e) {
    if (!(e instanceof PcapError)) throw e;
    err(`vale replay: ${file}: ${e.detail}\n`);
    code = e.kind === "not-a-file" || e.kind === "unreadable" ? 2 : 3;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    port.close();
  }
  out(line(st ?? replay.stats, true));
  return code;
}

function openPortOrFail(name: string) {
  try {
    return openPort(name);
  } catch (e) {
    throw new Error(`cannot open ${name}: ${(e as Error).message}`);
  }
}

function isRegular(file: string): boolean {
  try {
    return Deno.statSync(file).isFile;
  } catch {
    return true; // missing: reported when opened
  }
}

async function* readStdin() {
  const { readPcapStream } = await import("../lib/formats/pcap.ts");
  yield* readPcapStream(Deno.stdin.readable, { maxRecordLen: REPLAY_MAX_FRAME + 1024 * 1024 });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
