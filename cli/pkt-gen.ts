/**
 * pkt-gen: netmap's packet generator and sink, on vale ports. Same options,
 * same start-up lines, same periodic rate line (stderr, every -T ms), same
 * two-line summary (stdout), same ping RTT lines. The per-packet loops are
 * C (c-src/apps/pktgen.c); this file parses arguments, opens the ports, prints.
 *
 *   pkt-gen -i vale0:a -f rx &
 *   pkt-gen -i vale0:b -f tx -l 60 -n 1000000
 *
 * @module
 */
import { parsePortName, type PortSpec } from "../lib/names.ts";
import { openPortSpec } from "../lib/open.ts";
import type { Port } from "../lib/switch/port.ts";
import { Errno, ValeError } from "../lib/errors.ts";
import { switchInfo } from "../lib/switch/control.ts";
import {
  buildUdpFrame,
  DEFAULT_DST_MAC,
  DEFAULT_DST_RANGE,
  DEFAULT_SRC_MAC,
  DEFAULT_SRC_RANGE,
  encodeCycle,
  ipToString,
  makeCycle,
  PacketError,
  parseIpRange,
  parseMacArg,
} from "../lib/tools/packet.ts";
import { PcapError, readPcapFileSync } from "../lib/formats/pcap.ts";
import { PktGen, PKTGEN_FUNCTIONS, type PktGenFunction } from "../lib/tools/pktgen.ts";
import { atoi, D, err, getopt, norm, out, parseNmrConfig, sleep } from "./common.ts";

/** The usage text (`pkt-gen -h`, `pkt-gen --help`). */
export const USAGE = `Usage:
pkt-gen arguments
     -h      Show program usage and exit (also --help).

     -i interface
             Name of the port pkt-gen operates on: a vale(4) switch port (valeSSS:PPP,
             created on the fly if it does not exist, and the switch with it), one end
             of a pipe (valeSSS:PPP{N master, valeSSS:PPP}N slave), with netmap's
             suffixes: -N binds ring pair N only, /x opens exclusively,
             @conf:rings=N,slots=M sets the geometry of a port created on the fly;
             or a kernel interface: tap:NAME, netmap:IF (AF_XDP or PACKET_MMAP).

     -f function
             The function to be executed by pkt-gen: tx for transmission, rx for
             reception (the default), ping for client-side ping-pong, pong for
             server-side ping-pong, txseq to transmit packets carrying a sequence
             number, rxseq to receive them and report gaps and reordering.

     -n count
             Number of packets to transmit or receive (0 means forever, the default).
             Stops at exactly count.  For ping and pong, the number of ping-pong
             transactions.  With -p, divided among the threads.

     -l pkt_size
             Packet size in bytes excluding CRC (16..65536, default 60).  If passed a
             second time, use random sizes larger or equal than the second one and
             lower than the first one.  Packets larger than a buffer (2048 bytes) are
             sent as several slots (NS_MOREFRAG).

     -b burst_size
             Transmit or receive up to burst_size packets at a time (default 512; 1
             for ping and pong).

     -4      Use IPv4 addresses (the only ones supported).

     -d dst_ip[:port[-dst_ip:port]]
             Destination IPv4 address and UDP port, single or range (default
             10.1.0.1:1234).  Ranges cycle as netmap's do: the source port varies
             fastest, then the source address, the destination port, the destination
             address.

     -s src_ip[:port[-src_ip:port]]
             Source IPv4 address and UDP port, single or range (default 10.0.0.1:1234).

     -D dst_mac
             Destination MAC address in colon notation (default ff:ff:ff:ff:ff:ff).

     -S src_mac
             Source MAC address in colon notation (default 00:00:00:00:00:00).

     -z      Use a random IPv4 source address and port.

     -Z      Use a random IPv4 destination address and port.

     -a cpu_id
             Pin the first thread of pkt-gen to a particular CPU using
             pthread_setaffinity_np(3).  If more threads are used, they are pinned to
             the subsequent CPUs, one per thread.

     -c cpus
             Maximum number of CPUs to use (0 means to use all the available ones).

     -p threads
             Number of threads to use.  By default, only a single thread is used to
             handle all the rings of the port.  If threads is larger than one, each
             thread handles a single ring pair (the port needs as many rings, e.g.
             -i valeSSS:PPP@conf:rings=2 or -C 0,0,2).

     -T report_ms
             Number of milliseconds between reports (default 1000).

     -w wait_for_link_time
             Number of seconds to wait before starting (default 0 for vale ports).

     -R rate
             Packet transmission rate in packets per second (tx, txseq, ping).  Not
             setting it transmits as fast as possible.  Packets go out in bursts of
             at most burst_size, rate/300 and a quarter of the TX ring; a sender
             that fell behind catches up at no more than twice the rate.

     -X      Dump payload of each packet transmitted or received.

     -H len  Add an empty virtio-net header of size len (0, 10 or 12).  A vale
             port is opened with that header length, so the switch skips it
             and converts for ports without one; received frames start with
             it too (byte counts include it, as netmap's).

     -P file
             Send the packets of a pcap or pcapng file rather than constructing one
             within pkt-gen: with -f tx every packet of the file in turn, from the
             first, again and again until -n packets are sent (each thread of -p
             on its own share); ping, pong and txseq send the file's first packet.
             Packets go out as captured (-l, -s, -d, -S, -D, -z, -Z do not apply);
             -F, -M, -H, -R, -b, -n, -X do.

     -N      Do not normalize units (i.e., use bps, pps instead of Mbps, Kpps, etc.).

     -F num_frags
             Send multi-slot packets, each one with num_frags fragments (1..63).

     -M frag_size
             In multi-slot mode, frag_size specifies the size of each fragment, if
             smaller than the packet length divided by num_frags.

     -W      rx, rxseq: exit after one second without traffic (once traffic started).

     -v      Increase the verbosity level.

     -A      Compute mean and standard deviation (over a sliding window of 15 reports)
             of the transmit or receive rate.

     -B      Take Ethernet framing and CRC into account when computing the average bps:
             adds 4 bytes of CRC and 20 bytes of framing to each packet.

     -C tx_slots[,rx_slots[,tx_rings[,rx_rings]]]
             Rings and slots of a port created on the fly (as @conf:).  Missing numbers
             or zeroes stand for default values; one number sets both slot counts, a
             third without a fourth sets both ring counts.

Output:
     stdout  the port and the addresses at start, then at the end
             "Sent N packets B bytes E events S bytes each in T seconds." and
             "Speed: X Mpps Bandwidth: Y Gbps (raw Z Gbps). Average batch: A pkts"
             ("Received ..." for rx and rxseq, "Sent nothing." when nothing moved).
     stderr  every report_ms: "R Mpps (P Mpkts B Gbps in U usec) A avg_batch S min_space";
             ping every second "count N RTT: min X av Y ns" and a power-of-two
             histogram, at the end "RTT over N packets: min X av Y ns".
     Ctrl-C (SIGINT) stops and prints the summary.

Environment:
     VALE_RUN_DIR  where switches live (default /dev/shm/vale).

Not supported: -6 (IPv6), -I (indirect buffers), -r (rubbish), -o.
`;

const SENDERS: PktGenFunction[] = ["tx", "txseq"];
const RECEIVERS: PktGenFunction[] = ["rx", "rxseq"];
const DEFAULT_BURST: Record<PktGenFunction, number> = {
  rx: 512,
  tx: 512,
  ping: 1,
  pong: 1,
  txseq: 512,
  rxseq: 512,
};

function usage(code: number): number {
  err(USAGE);
  return code;
}

interface Args {
  ifname: string;
  func: PktGenFunction;
  npackets: bigint;
  size: number;
  minSize: number;
  burst: number;
  rate: number;
  nthreads: number;
  cpus: number;
  affinity: number;
  srcIp: string;
  dstIp: string;
  srcMac: string;
  dstMac: string;
  randomSrc: boolean;
  randomDst: boolean;
  waitLink: number;
  waitLinkGiven: boolean;
  reportMs: number;
  frags: number;
  fragSize: number;
  pcap?: string;
  forever: boolean;
  dump: boolean;
  normalize: boolean;
  ppsStats: boolean;
  framing: number;
  hdrLen: number;
  nmrConfig?: string;
  verbose: number;
}

function parse(argv: string[]): Args | number {
  const a: Args = {
    ifname: "",
    func: "rx",
    npackets: 0n,
    size: 60,
    minSize: 0,
    burst: 0,
    rate: 0,
    nthreads: 1,
    cpus: 1,
    affinity: -1,
    srcIp: DEFAULT_SRC_RANGE,
    dstIp: DEFAULT_DST_RANGE,
    srcMac: DEFAULT_SRC_MAC,
    dstMac: DEFAULT_DST_MAC,
    randomSrc: false,
    randomDst: false,
    waitLink: 2,
    waitLinkGiven: false,
    reportMs: 1000,
    frags: 1,
    fragSize: 0,
    forever: true,
    dump: false,
    normalize: true,
    ppsStats: false,
    framing: 0,
    hdrLen: 0,
    verbose: 0,
  };
  const g = getopt(
    "pkt-gen",
    argv,
    "46a:f:F:Nn:i:Il:d:s:D:S:b:c:o:p:T:w:WvR:XC:H:rP:zZAhBM:",
    [{ name: "help", arg: "none" }],
  );
  if (g.error) {
    err(`${g.error}\n`);
    D("main", 2911, `bad option ${g.badOpt} (null)`);
    return usage(255);
  }
  let sizeDone = false;
  for (const { opt, arg } of g.opts) {
    switch (opt) {
      case "h":
      case "help":
        if (opt === "help") out(USAGE);
        else err(USAGE);
        return 0;
      case "4":
        break;
      case "6":
        err("pkt-gen: -6: IPv6 is not supported\n");
        return usage(255);
      case "I":
      case "r":
      case "o":
        err(`pkt-gen: -${opt} is not supported\n`);
        return usage(255);
      case "N":
        a.normalize = false;
        break;
      case "n":
        if (!/^\s*\d+/.test(arg!)) {
          D("main", 2926, `bad packet count ${arg}`);
          return usage(255);
        }
        a.npackets = BigInt(/^\s*(\d+)/.exec(arg!)![1]);
        break;
      case "F": {
        const i = atoi(arg);
        if (i < 1 || i > 63) D("main", 2931, `invalid frags ${i} [1..63], ignore`);
        else a.frags = i;
        break;
      }
      case "M":
        a.fragSize = atoi(arg);
        break;
      case "f":
        if (!(PKTGEN_FUNCTIONS as readonly string[]).includes(arg!)) {
          D("main", 2951, `unrecognised function ${arg}`);
          return usage(255);
        }
        a.func = arg as PktGenFunction;
        break;
      case "a":
        a.affinity = atoi(arg);
        break;
      case "i":
        D("main", 2966, `interface is ${arg}`);
        a.ifname = arg!;
        break;
      case "l":
        if (sizeDone) a.minSize = atoi(arg);
        else {
          a.size = atoi(arg);
          sizeDone = true;
        }
        break;
      case "d":
        a.dstIp = arg!;
        break;
      case "s":
        a.srcIp = arg!;
        break;
      case "T":
        a.reportMs = atoi(arg);
        break;
      case "w":
        a.waitLink = atoi(arg);
        a.waitLinkGiven = true;
        break;
      case "W":
        a.forever = false;
        break;
      case "b":
        a.burst = atoi(arg);
        break;
      case "c":
        a.cpus = atoi(arg);
        break;
      case "p":
        a.nthreads = atoi(arg);
        break;
      case "D":
        a.dstMac = arg!;
        break;
      case "S":
        a.srcMac = arg!;
        break;
      case "v":
        a.verbose++;
        break;
      case "R":
        a.rate = atoi(arg);
        break;
      case "X":
        a.dump = true;
        break;
      case "C":
        a.nmrConfig = arg;
        break;
      case "H":
        a.hdrLen = atoi(arg);
        break;
      case "P":
        a.pcap = arg;
        break;
      case "z":
        a.randomSrc = true;
        break;
      case "Z":
        a.randomDst = true;
        break;
      case "A":
        a.ppsStats = true;
        break;
      case "B":
        a.framing = 24 * 8;
        break;
    }
  }
  if (g.operands.length) {
    err(`pkt-gen: unexpected argument '${g.operands[0]}'\n`);
    return usage(255);
  }
  if (!a.ifname) {
    D("main", 3060, "missing ifname");
    return usage(255);
  }
  if (a.burst === 0) {
    a.burst = DEFAULT_BURST[a.func];
    D("main", 3066, `using default burst size: ${a.burst}`);
  }
  const ncpu = navigator.hardwareConcurrency;
  if (a.cpus < 0 || a.cpus > ncpu) {
    D("main", 3072, `${a.cpus} cpus is too high, have only ${ncpu} cpus`);
    return usage(255);
  }
  D("main", 3075, `running on ${a.cpus} cpus (have ${ncpu})`);
  if (a.cpus === 0) a.cpus = ncpu;
  if (!a.waitLinkGiven && a.ifname.startsWith("vale")) a.waitLink = 0;
  if (a.size < 16 || a.size > 65536) {
    D("main", 3083, `bad pktsize ${a.size} [16..65536]\n`);
    return usage(255);
  }
  if (a.minSize > 0 && (a.minSize < 16 || a.minSize > a.size)) {
    D("main", 3088, `bad pktminsize ${a.minSize} [16..${a.size}]\n`);
    return usage(255);
  }
  if (a.minSize === a.size) a.minSize = 0; // [size, size): every packet is size bytes
  if (a.hdrLen !== 0 && a.hdrLen !== 10 && a.hdrLen !== 12) {
    D("main", 3112, "bad virtio-net-header length");
    return usage(255);
  }
  if (a.nthreads < 1) {
    D("main", 3150, `bad nthreads ${a.nthreads}`);
    return usage(255);
  }
  if (a.nthreads > 1 && (a.func === "ping" || a.func === "pong" || a.func === "txseq")) {
    D(`${a.func}_body`, 1101, `can only ${a.func} with 1 thread`);
    return usage(255);
  }
  if (a.reportMs <= 0) a.reportMs = 1000;
  return a;
}

/** A -P file that gives no packet to send; the message says why, without the path. */
class PcapInputError extends Error {}

/** Most packets of a -P file pkt-gen holds and sends in turn. */
const MAX_SET = 100_000;

/** Largest frame pkt-gen sends (-l's range); also the longest pcap record -P reads. */
const MAX_PKT_SIZE = 65536;

/**
 * The packets of a -P file (pcap or pcapng), in file order: the first
 * {@link MAX_SET} of them, read from at most 256 MiB (`vale replay` streams
 * files of any size). The file must be regular (a FIFO or device is refused
 * before it is opened, so -P never blocks or reads forever). A record longer than pkt-gen can
 * send is refused from its header, before its bytes are read: the packets
 * before it are sent, with a warning, as are those before any damage.
 * Packets shorter than 16 bytes cannot be sent: they are skipped and counted.
 */
function pcapPackets(file: string): Uint8Array[] {
  let r;
  try {
    r = readPcapFileSync(file, { maxRecordLen: MAX_PKT_SIZE, maxRecords: MAX_SET, copy: true });
  } catch (e) {
    if (e instanceof PcapError) throw new PcapInputError(e.detail);
    throw e;
  }
  const all = r.records.map((x) => x.data);
  const ok = all.filter((d) => d.length >= 16);
  if (!ok.length) {
    throw new PcapInputError(
      r.error
        ? r.error.detail
        : all.length
        ? `no packet of 16 bytes or more (pkt-gen sends 16..${MAX_PKT_SIZE})`
        : `no packet in the file (a ${r.header?.format} header only)`,
    );
  }
  if (r.error) {
    err(`pkt-gen: -P ${file}: ${r.error.detail}; sending the ${all.length} packets before it\n`);
  }
  if (all.length >= MAX_SET) {
    err(
      `pkt-gen: -P ${file}: only the first ${MAX_SET} packets are sent ('vale replay' sends any number)\n`,
    );
  }
  if (ok.length < all.length) {
    err(`pkt-gen: -P ${file}: ${all.length - ok.length} packets under 16 bytes skipped\n`);
  }
  return ok;
}

/** The frame to send: pkt-gen's Ethernet + IPv4 + UDP, or the first packet of -P FILE. */
function buildFrame(
  a: Args,
): { frame: Uint8Array; cycle?: Uint32Array; raw: boolean; set?: Uint8Array[] } {
  let body: Uint8Array;
  let cycle: Uint32Array | undefined;
  let raw = false;
  let set: Uint8Array[] | undefined;
  if (a.pcap) {
    const packets = pcapPackets(a.pcap);
    body = packets[0]; // the template: the only frame of ping, pong, txseq
    if (packets.length > 1 && a.func === "tx") {
      set = packets.map((p) => {
        const f = new Uint8Array(a.hdrLen + p.length);
        f.set(p, a.hdrLen);
        return f;
      });
    }
    a.size = body.length;
    if (a.minSize >= a.size) a.minSize = 0;
    raw = true;
  } else {
    const src = parseIpRange(a.srcIp), dst = parseIpRange(a.dstIp);
    D(
      "extract_ip_range",
      465,
      `range is ${ipToString(src.start)}:${src.port0} to ${ipToString(src.end)}:${src.port1}`,
    );
    D(
      "extract_ip_range",
      465,
      `range is ${ipToString(dst.start)}:${dst.port0} to ${ipToString(dst.end)}:${dst.port1}`,
    );
    const c = makeCycle(src, dst, {
      randomSrc: a.randomSrc,
      randomDst: a.randomDst,
      seed: BigInt(Date.now()),
    });
    const len = Math.max(a.size, 42);
    const f = buildUdpFrame({
      length: len,
      allowRunt: len < 60,
      srcMac: parseMacArg(a.srcMac),
      dstMac: parseMacArg(a.dstMac),
      srcIp: src.start,
      dstIp: dst.start,
      srcPort: src.port0,
      dstPort: dst.port0,
    });
    body = f.subarray(0, a.size);
    cycle = encodeCycle(c);
  }
  const frame = new Uint8Array(a.hdrLen + body.length);
  frame.set(body, a.hdrLen);
  return { frame, cycle, raw, set };
}

/** Open one port per thread: all rings for one thread, ring i for thread i otherwise. */
function openPorts(a: Args): { ports: Port[]; spec: PortSpec; queues: number } {
  const spec = parsePortName(a.ifname);
  if (a.nmrConfig) {
    const c = parseNmrConfig(a.nmrConfig);
    D(
      "parse_nmr_config",
      566,
      `txr ${c.txRings} txd ${c.txSlots} rxr ${c.rxRings} rxd ${c.rxSlots}`,
    );
    if (c.txSlots) spec.conf.txSlots ??= c.txSlots;
    if (c.rxSlots) spec.conf.rxSlots ??= c.rxSlots;
    if (c.txRings) spec.conf.txRings ??= c.txRings;
    if (c.rxRings) spec.conf.rxRings ??= c.rxRings;
  }
  const ports: Port[] = [];
  // -H: a switch port is opened with that virtio-net header length (netmap's
  // NETMAP_REQ_PORT_HDR_SET), so the switch skips it and converts for others
  const open = (s: PortSpec) =>
    openPortSpec(s, spec.kind === "vale" && a.hdrLen ? { vnetHdrLen: a.hdrLen } : {});
  try {
    if (a.nthreads === 1) {
      ports.push(open(spec));
    } else {
      if (spec.mode === "one-nic") {
        throw new ValeError(
          Errno.EINVAL,
          `${a.ifname}: -p ${a.nthreads} needs all rings, not one (-N)`,
        );
      }
      ports.push(open({ ...spec, mode: "one-nic", ring: 0 }));
    }
    // kernel interfaces (tap:, netmap:) are pipes on a private switch: ask the port where it is
    const info = switchInfo(ports[0].switchName, { runDir: ports[0].runDir }).ports
      .find((p) => p.index === ports[0].index);
    const sender = SENDERS.includes(a.func);
    const queues = info ? (sender ? info.tx_rings : info.rx_rings) : 1;
    if (a.nthreads > queues) {
      D("main", 3155, `bad nthreads ${a.nthreads}, have ${queues} queues`);
      throw new ValeError(
        Errno.EINVAL,
        `${a.ifname}: ${queues} ring(s), cannot run ${a.nthreads} threads`,
      );
    }
    for (let i = 1; i < a.nthreads; i++) {
      ports.push(open({ ...spec, mode: "one-nic", ring: i }));
    }
    if (a.verbose && info) {
      D(
        "main",
        3180,
        `memsize ${info.memsize} ntxqs ${info.tx_rings} nrxqs ${info.rx_rings} memid ${info.mem_id}`,
      );
      for (let i = 0; i < info.tx_rings; i++) D("main", 3185, `   TX${i} slots ${info.tx_slots}`);
      for (let i = 0; i < info.rx_rings; i++) D("main", 3190, `   RX${i} slots ${info.rx_slots}`);
    }
    return { ports, spec, queues };
  } catch (e) {
    for (const p of ports) p.close();
    throw e;
  }
}

/** pkt-gen's main(); returns the exit status. */
/** The frame template (and address cycle) from the arguments; an exit status on bad input. */
function prepareFrame(a: Args): ReturnType<typeof buildFrame> | number {
  try {
    return buildFrame(a);
  } catch (e) {
    if (e instanceof PcapInputError) {
      // a bad file is not a usage error: one line, what and where, no usage text
      err(`pkt-gen: -P ${a.pcap}: ${e.message}\n`);
      return 255;
    }
    if (e instanceof PacketError) {
      D("main", 3100, e.message);
      return usage(255);
    }
    throw e;
  }
}

/**
 * -R: at least something every ~1/300 s, bursts of at most rate/300 (netmap),
 * and of at most a quarter of a ring; sets a.burst. netmap keeps -b (512, half a
 * 1024-slot ring): two bursts then fill a receiver's ring, which must wake and
 * drain within one period (256 µs at 2 Mpps) or drop; a busy machine often keeps
 * a sleeping receiver waiting longer than that. With a quarter ring it has four
 * periods (0.5 ms at 2 Mpps, 2 ms at 0.5 Mpps; half that while the sender
 * catches up, see pace_wait() in c-src/apps/pktgen.c).
 */
function pace(a: Args, sender: boolean, ports: Port[]): void {
  if (a.rate <= 0) return;
  const lim = Math.floor(a.rate / 300);
  if (a.burst > lim) a.burst = lim;
  const slots = ports[0].txRings[0]?.numSlots ?? 0;
  if (slots >= 8 && a.burst > Math.floor((slots - 1) / 4)) a.burst = Math.floor((slots - 1) / 4);
  if (a.burst === 0) a.burst = 1;
  const periodNs = (1000000000n * BigInt(a.burst)) / BigInt(a.rate);
  if (sender) {
    D(
      "main",
      3268,
      `Sending ${a.burst} packets every  ${periodNs / 1000000000n}.${
        String(periodNs % 1000000000n).padStart(9, "0")
      } s`,
    );
  }
}

/** The C generator over the opened ports. */
function createGenerator(
  a: Args,
  built: { frame: Uint8Array; cycle?: Uint32Array; raw: boolean; set?: Uint8Array[] },
  ports: Port[],
): PktGen {
  return new PktGen(
    {
      func: a.func,
      burst: a.burst,
      npackets: a.npackets,
      size: a.size,
      minSize: a.minSize,
      frags: a.frags,
      fragSize: a.fragSize,
      rate: a.rate,
      affinity: a.affinity,
      cpus: a.affinity >= 0 && a.cpus === 1 ? navigator.hardwareConcurrency : a.cpus,
      forever: a.forever,
      dump: a.dump,
      hdrLen: a.hdrLen,
      raw: built.raw,
      seed: BigInt(Date.now()),
      cycle: built.cycle,
    },
    built.frame,
    ports,
    built.set,
  );
}

/** netmap's start_threads(): the link wait and each thread's first line. */
async function announceThreads(a: Args, ports: Port[], sender: boolean): Promise<void> {
  D("start_threads", 2718, `Wait ${a.waitLink} secs for phy reset`);
  if (a.waitLink > 0) await sleep(a.waitLink * 1000);
  D("start_threads", 2720, "Ready...");
  for (let i = 0; i < a.nthreads; i++) {
    const fd = ports[i].pollFd;
    if (sender || a.func === "ping") {
      D("sender_body", 1583, `start, fd ${fd} main_fd ${ports[0].pollFd}`);
    } else D("receiver_body", 1843, `reading from ${a.ifname} fd ${fd} main_fd ${ports[0].pollFd}`);
  }
}

/**
 * What the threads report as they go: ping RTT windows, ping/pong timeouts
 * and rxseq events, checked 10 times a second; printed as netmap does.
 */
class ProgressWatcher {
  pingSeen = 0;
  #timeoutsSeen = 0;
  #seqSecond = 0;
  #seqPrinted = 0;
  readonly #seqSeen: number[];
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(readonly a: Args, readonly gen: PktGen) {
    this.#seqSeen = new Array(a.nthreads).fill(0);
    this.#timer = setInterval(() => this.#tick(), 100);
  }

  #tick(): void {
    const { a, gen } = this;
    if (a.func === "ping") {
      const w = gen.pingWindow(0, this.pingSeen);
      if (w) {
        this.pingSeen = w.seq;
        if (w.count > 0) printPingWindow(w);
      }
    }
    if (a.func === "ping" || a.func === "pong") {
      const t = gen.stats(0).timeouts;
      for (; this.#timeoutsSeen < t; this.#timeoutsSeen++) {
        D(`${a.func}_body`, a.func === "ping" ? 1140 : 1222, "poll error on queue 0: timeout");
      }
    }
    if (a.func === "rxseq") this.printSeqEvents();
  }

  /** New rxseq events, netmap's RD(2, ...): at most two lines a second. */
  printSeqEvents(): void {
    for (let i = 0; i < this.a.nthreads; i++) {
      for (const e of this.gen.seqEvents(i, this.#seqSeen[i])) {
        this.#seqSeen[i] = e.n + 1;
        const sec = Math.floor(performance.now() / 1000);
        if (sec !== this.#seqSecond) {
          this.#seqSecond = sec;
          this.#seqPrinted = 0;
        }
        if (this.#seqPrinted++ >= 2) continue;
        D(
          "rxseq_body",
          2049,
          e.kind === "gap"
            ? `Sequence GAP: exp ${e.expected} found ${e.found}`
            : `Sequence OUT OF ORDER: exp ${e.expected} found ${e.found}`,
        );
      }
    }
  }

  /** Stop checking. */
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** netmap's main_thread(): a rate line every report_ms until every thread is done. */
async function reportRates(a: Args, gen: PktGen, running: Promise<number>): Promise<void> {
  let finished = false;
  running.then(() => finished = true, () => finished = true);
  const win: number[] = new Array(15).fill(0);
  let winIdx = 0;
  let prev = { pkts: 0, bytes: 0, events: 0, t: performance.now() };
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise((r) => timer = setTimeout(r, a.reportMs)),
      running.catch(() => 0),
    ]);
    clearTimeout(timer);
    const now = performance.now();
    const usec = Math.round((now - prev.t) * 1000);
    const cur = gen.totals();
    gen.resetMinSpace();
    const done = finished || cur.done === a.nthreads;
    // too short to be meaningful (netmap), unless it is the last one and has
    // packets no line counted yet: the lines add up to the totals
    if (usec < 10000 && !(done && cur.pkts !== prev.pkts)) {
      if (done) break;
      continue;
    }
    const x = { pkts: cur.pkts - prev.pkts, bytes: cur.bytes - prev.bytes };
    const events = cur.events - prev.events;
    const pps = Math.floor((x.pkts * 1000000 + Math.floor(usec / 2)) / usec);
    const abs = events > 0 ? x.pkts / events : 0;
    let b4 = "";
    if (a.ppsStats) {
      win[winIdx] = pps;
      winIdx = (winIdx + 1) % win.length;
      const samples = win.filter((v) => v !== 0);
      const avg = samples.reduce((s, v) => s + v, 0) / Math.max(samples.length, 1);
      const dev = Math.sqrt(
        samples.reduce((s, v) => s + (v - avg) * (v - avg), 0) / Math.max(samples.length, 1),
      );
      b4 = `[avg/std ${norm(avg, a.normalize)}/${norm(dev, a.normalize)} pps]`;
    }
    D(
      "main_thread",
      2783,
      `${norm(pps, a.normalize)}pps ${b4}(${norm(x.pkts, a.normalize)}pkts ${
        norm(1000000 * (x.bytes * 8 + x.pkts * a.framing) / usec, a.normalize)
      }bps in ${usec} usec) ${abs.toFixed(2)} avg_batch ${cur.minSpace} min_space`,
    );
    prev = { pkts: cur.pkts, bytes: cur.bytes, events: cur.events, t: now };
    if (done) break;
  }
}

/** The final round: totals, the latest start and end over the threads, per-function summaries. */
function finalReport(a: Args, gen: PktGen, ports: Port[], progress: ProgressWatcher): void {
  const sender = SENDERS.includes(a.func), receiver = RECEIVERS.includes(a.func);
  let pkts = 0, bytes = 0, events = 0, tic = 0n, toc = 0n;
  for (let i = 0; i < a.nthreads; i++) {
    const s = gen.stats(i);
    pkts += s.pkts;
    bytes += s.bytes;
    events += s.events;
    if (s.ticNs > tic) tic = s.ticNs;
    if (s.tocNs > toc) toc = s.tocNs;
    if (s.done !== 1) {
      D("main_thread", 2831, `ouch, thread ${i} exited with error (${-s.error})`);
    }
    if (a.verbose) D("main_thread", 2835, `thread ${i}: slept ${s.sleeps} times`);
  }
  const delta = toc > tic ? Number((toc - tic) / 1000n) / 1e6 : 0;
  if (a.func === "ping") {
    const w = gen.pingWindow(0, progress.pingSeen);
    if (w && w.count > 0) printPingWindow(w);
    const r = gen.stats(0).rtt;
    if (pkts > 0) {
      D(
        "ping_body",
        1183,
        `RTT over ${pkts} packets: min ${r.count ? r.min : -1} av ${
          r.count ? Math.floor(r.sum / r.count) : 0
        } ns`,
      );
    }
  }
  if (a.func === "rxseq") {
    progress.printSeqEvents();
    const s = { gaps: 0, lost: 0, ooo: 0 };
    for (let i = 0; i < a.nthreads; i++) {
      const q = gen.stats(i).seq;
      s.gaps += q.gaps;
      s.lost += q.lost;
      s.ooo += q.outOfOrder;
    }
    D(
      "rxseq_body",
      2090,
      `sequence: ${s.gaps} gaps (${s.lost} packets missing), ${s.ooo} out of order`,
    );
  }
  if (sender) {
    const r = ports[0]?.txRings[0];
    if (r) {
      D(
        "sender_body",
        1726,
        `flush tail ${r.tail} head ${r.head} on thread 0x${Deno.pid.toString(16)}`,
      );
    }
  }
  if (sender) txOutput(pkts, bytes, events, delta, "Sent", a);
  else if (receiver) txOutput(pkts, bytes, events, delta, "Received", a);
}

/** pkt-gen's main(): parse, build the frame, open the ports, run, report. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parse(argv);
  if (typeof parsed === "number") return parsed;
  const a = parsed;
  const sender = SENDERS.includes(a.func), receiver = RECEIVERS.includes(a.func);

  const built = prepareFrame(a);
  if (typeof built === "number") return built;
  if (a.func === "ping" && a.size < 54) {
    D("main", 3101, `ping needs packets of at least 54 bytes (-l ${a.size})`);
    return usage(255);
  }

  let ports: Port[], queues: number;
  try {
    ({ ports, queues } = openPorts(a));
  } catch (e) {
    err(`${e instanceof Error ? e.message : e}\n`);
    D("main", 3209, "aborting");
    return 255;
  }

  out(
    `${sender ? "Sending on" : receiver ? "Receiving from" : "Working on"} ${a.ifname}: ` +
      `${queues} queues, ${a.nthreads} threads and ${a.cpus} cpus.\n`,
  );
  if (sender) out(`${a.srcIp} -> ${a.dstIp} (${a.srcMac} -> ${a.dstMac})\n`);
  pace(a, sender, ports);

  let gen: PktGen;
  try {
    gen = createGenerator(a, built, ports);
  } catch (e) {
    for (const p of ports) p.close();
    err(`${e instanceof Error ? e.message : e}\n`);
    return 255;
  }

  const onSigint = () => {
    D("sigint_h", 553, `received control-C on thread 0x${Deno.pid.toString(16)}`);
    gen.stop();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  await announceThreads(a, ports, sender);

  const running = gen.run();
  const progress = new ProgressWatcher(a, gen);
  await reportRates(a, gen, running);
  const rc = await running;
  progress.stop();
  Deno.removeSignalListener("SIGINT", onSigint);

  finalReport(a, gen, ports, progress);
  gen.close();
  for (const p of ports) p.close();
  return rc < 0 ? 1 : 0;
}

function printPingWindow(w: { count: number; min: number; sum: number; buckets: number[] }) {
  D("ping_body", 1150, `count ${w.count} RTT: min ${w.min} av ${Math.floor(w.sum / w.count)} ns`);
  let kmin = 0, k = 63;
  while (kmin < 64 && !w.buckets[kmin]) kmin++;
  while (k >= kmin && !w.buckets[k]) k--;
  let buf = "";
  for (let j = kmin; j <= k; j++) buf += ` ${String(w.buckets[j]).padStart(5)}`;
  D("ping_body", 1166, `k: ${2 ** kmin} .. ${2 ** k}\n\t${buf}`);
}

/** netmap's tx_output(): the two summary lines on stdout. */
function txOutput(
  pkts: number,
  bytes: number,
  events: number,
  delta: number,
  msg: string,
  a: Args,
) {
  if (pkts === 0) {
    out(`${msg} nothing.\n`);
    return;
  }
  const size = Math.floor(bytes / pkts);
  out(
    `${msg} ${pkts} packets ${bytes} bytes ${events} events ${size} bytes each in ${
      delta.toFixed(2)
    } seconds.\n`,
  );
  if (delta === 0) delta = 1e-6;
  const pps = pkts / delta;
  const bw = (8.0 * bytes) / delta;
  const raw = (8.0 * bytes + pkts * a.framing) / delta;
  const abs = pkts / events;
  out(
    `Speed: ${norm(pps, a.normalize)}pps Bandwidth: ${norm(bw, a.normalize)}bps (raw ${
      norm(raw, a.normalize)
    }bps). Average batch: ${abs.toFixed(2)} pkts\n`,
  );
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
