// pkt-gen as a user runs it (bin/pkt-gen in a subprocess, real arguments):
// what it prints, and what arrived on the other side. Counts are exact;
// rates are checked loosely and only where pkt-gen's own -R paces them.
import assert from "node:assert/strict";
import { openPort } from "../lib/open.ts";
import {
  addressesAt,
  buildUdpFrame,
  decodeTxSeq,
  encodeTxSeq,
  makeCycle,
  parseEthernet,
  parseIPv4,
  parseUDP,
} from "../lib/tools/packet.ts";
import { encodePcap } from "../lib/formats/pcap.ts";
import { tempRunDir } from "./helpers/procs.ts";
import {
  portOf,
  rateLines,
  ringDrops,
  runTool,
  startTool,
  summary,
  until,
} from "./helpers/tools.ts";

const PERIODIC =
  /^\d{3}\.\d{6} main_thread \[\d+\] [\d.]+ [KMG]?pps \([\d.]+ [KMG]?pkts [\d.]+ [KMG]?bps in \d+ usec\) [\d.]+ avg_batch \d+ min_space$/m;

/** Receive exactly n frames (reassembled) on an open port, or fail after timeoutMs. */
async function collect(port: ReturnType<typeof openPort>, n: number, timeoutMs = 15000) {
  const got: Uint8Array[] = [];
  const t0 = Date.now();
  while (got.length < n && Date.now() - t0 < timeoutMs) got.push(...await port.receive(200));
  port.rxsync(); // give the slots just read back to the switch (netmap: at the next sync)
  return got;
}

Deno.test("pkt-gen --help, -h, and wrong options", async (t) => {
  await using run = await tempRunDir();
  await t.step("--help: usage on stdout, status 0", async () => {
    const r = await runTool("pkt-gen", ["--help"], run.dir);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage:\npkt-gen arguments\n/);
    for (const o of ["-i interface", "-f function", "-n count", "-l pkt_size", "-R rate", "-W"]) {
      assert.ok(r.stdout.includes(o), `usage documents ${o}`);
    }
  });
  await t.step("-h: usage on stderr, status 0 (netmap)", async () => {
    const r = await runTool("pkt-gen", ["-h"], run.dir);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /Usage:\npkt-gen arguments/);
  });
  const bad: [string[], RegExp][] = [
    [["-q"], /pkt-gen: invalid option -- 'q'/],
    [["-i"], /option requires an argument -- 'i'/],
    [["-f", "tx"], /missing ifname/],
    [["-i", "vale0:x", "-f", "bogus"], /unrecognised function bogus/],
    [["-i", "vale0:x", "-l", "10"], /bad pktsize 10 \[16\.\.65536\]/],
    [["-i", "vale0:x", "-l", "100", "-l", "200"], /bad pktminsize 200 \[16\.\.100\]/],
    [["-i", "vale0:x", "-f", "tx", "-D", "zz:00"], /invalid MAC address 'zz:00'/],
    [["-i", "vale0:x", "-c", "99"], /99 cpus is too high/],
    [["-i", "vale0:x", "extra"], /unexpected argument 'extra'/],
  ];
  for (const [args, re] of bad) {
    await t.step(`${args.join(" ")}: message, usage, non-zero status`, async () => {
      const r = await runTool("pkt-gen", args, run.dir);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /Usage:\npkt-gen arguments/);
    });
  }
  assert.deepEqual([...Deno.readDirSync(run.dir)], [], "nothing left behind");
});

Deno.test("pkt-gen tx -> vale0 -> pkt-gen rx: exact counts with -n, netmap's lines", async () => {
  await using run = await tempRunDir();
  const N = 30000;
  // a deep RX ring and a paced sender: normally nothing drops; on a machine so
  // busy that a process is kept off the CPU for long, what drops is counted
  const rx = startTool(
    "pkt-gen",
    ["-i", "vale0:rx@conf:slots=4096", "-f", "rx", "-n", `${N}`, "-W"],
    run.dir,
  );
  await rx.waitFor(/reading from/);
  const tx = await runTool("pkt-gen", [
    "-i",
    "vale0:tx",
    "-f",
    "tx",
    "-n",
    `${N}`,
    "-R",
    "50000",
    "-T",
    "200",
  ], run.dir);
  // tx's txsync delivered or dropped everything: the rx port's drops are final
  const dropped = ringDrops(run.dir, "vale0", "rx");
  const r = await rx.within();
  assert.equal(tx.code, 0, tx.stderr);
  assert.equal(r.code, 0, r.stderr);

  // start-up lines (stdout), as netmap prints them
  assert.match(tx.stdout, /^Sending on vale0:tx: 1 queues, 1 threads and 1 cpus\.\n/);
  assert.match(
    tx.stdout,
    /^10\.0\.0\.1 -> 10\.1\.0\.1 \(00:00:00:00:00:00 -> ff:ff:ff:ff:ff:ff\)$/m,
  );
  assert.match(
    r.stdout,
    /^Receiving from vale0:rx@conf:slots=4096: 1 queues, 1 threads and 1 cpus\.\n/,
  );
  assert.match(tx.stderr, /Sending 166 packets every {2}0\.003320000 s/);
  // the final two lines
  const ts = summary(tx.stdout)!, rs = summary(r.stdout)!;
  assert.deepEqual([ts.verb, ts.pkts, ts.bytes, ts.size], ["Sent", N, N * 60, 60]);
  assert.deepEqual([rs.verb, rs.pkts + dropped, rs.bytes, rs.size], [
    "Received",
    N,
    rs.pkts * 60,
    60,
  ]);
  if (dropped) console.warn(`(a busy machine: ${dropped} packets dropped, all counted)`);
  assert.match(
    tx.stdout,
    /^Speed: [\d.]+ [KM]pps Bandwidth: [\d.]+ [KMG]bps \(raw [\d.]+ [KMG]bps\)\. Average batch: [\d.]+ pkts$/m,
  );
  assert.match(r.stdout, /^Speed: .* Average batch: [\d.]+ pkts$/m);
  // the periodic line, every -T ms, on stderr
  assert.match(tx.stderr, PERIODIC);
  assert.ok(rateLines(tx.stderr).length >= 1);
  assert.equal(rateLines(tx.stderr).reduce((s, l) => s + l.pkts, 0), N, "rate lines add up");
  assert.doesNotMatch(tx.stdout + r.stdout, /main_thread/, "rate lines go to stderr only");
});

Deno.test("pkt-gen frames: Ethernet + IPv4 + UDP, valid checksums, ranges cycle as netmap's", async (t) => {
  await using run = await tempRunDir();
  using port = openPort("vale0:check@conf:slots=4096", { runDir: run.dir });

  await t.step("address and port ranges, netmap's order", async () => {
    const src = "10.0.0.1:1234-10.0.0.2:1235", dst = "10.1.0.1-10.1.0.3";
    const r = await runTool("pkt-gen", [
      "-i",
      "vale0:gen",
      "-f",
      "tx",
      "-n",
      "60",
      "-l",
      "100",
      "-s",
      src,
      "-d",
      dst,
      "-S",
      "02:00:00:00:00:01",
      "-D",
      "02:00:00:00:00:02",
    ], run.dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^10\.0\.0\.1:1234-10\.0\.0\.2:1235 -> 10\.1\.0\.1-10\.1\.0\.3 \(02:00:00:00:00:01 -> 02:00:00:00:00:02\)$/m,
    );
    const frames = await collect(port, 60);
    assert.equal(frames.length, 60);
    const cyc = makeCycle(src, dst);
    frames.forEach((f, i) => {
      assert.equal(f.length, 100);
      const e = parseEthernet(f);
      assert.deepEqual([e.dst, e.src, e.etherType], [
        "02:00:00:00:00:02",
        "02:00:00:00:00:01",
        0x0800,
      ]);
      const ip = parseIPv4(f), udp = parseUDP(f);
      assert.ok(ip.checksumValid, `IPv4 checksum of packet ${i}`);
      assert.ok(udp.checksumValid && udp.checksum !== 0, `UDP checksum of packet ${i}`);
      assert.equal(ip.totalLength, 86);
      assert.equal(udp.length, 66);
      const want = addressesAt(cyc, i);
      assert.deepEqual(
        [ip.srcNum, udp.srcPort, ip.dstNum, udp.dstPort],
        [want.srcIp, want.srcPort, want.dstIp, want.dstPort],
        `addresses of packet ${i}`,
      );
    });
  });

  await t.step("-l twice: random lengths in [min, max), headers and checksums follow", async () => {
    // more packets than slots, so buffers are reused by longer and shorter packets,
    // and lengths beyond a buffer (several slots) mixed with single-slot ones
    const N = 3000;
    const r = await runTool("pkt-gen", [
      "-i",
      "vale0:gen",
      "-f",
      "tx",
      "-n",
      `${N}`,
      "-l",
      "3000",
      "-l",
      "60",
      "-b",
      "64",
      "-R",
      "10000",
    ], run.dir);
    assert.equal(r.code, 0, r.stderr);
    const frames = await collect(port, N);
    assert.equal(frames.length, N);
    const lens = new Set<number>();
    for (const f of frames) {
      assert.ok(f.length >= 60 && f.length < 3000, `length ${f.length}`);
      lens.add(f.length);
      const ip = parseIPv4(f), udp = parseUDP(f);
      assert.ok(ip.checksumValid && udp.checksumValid, `checksums of a ${f.length}-byte frame`);
      assert.equal(ip.totalLength, f.length - 14);
    }
    assert.ok(lens.size > 1000, `lengths vary (${lens.size} distinct)`);
    assert.ok([...lens].some((l) => l > 2048) && [...lens].some((l) => l <= 2048));
    assert.equal(summary(r.stdout)!.bytes, frames.reduce((s, f) => s + f.length, 0));
  });

  await t.step("-z / -Z: random addresses, still valid", async () => {
    const r = await runTool(
      "pkt-gen",
      ["-i", "vale0:gen", "-f", "tx", "-n", "100", "-z", "-Z"],
      run.dir,
    );
    assert.equal(r.code, 0, r.stderr);
    const frames = await collect(port, 100);
    assert.equal(frames.length, 100, JSON.stringify(portOf(run.dir, "vale0", "check")));
    const srcs = new Set(frames.map((f) => parseIPv4(f).src));
    assert.ok(srcs.size > 90, `${srcs.size} distinct sources: ${[...srcs].slice(0, 5)}`);
    for (const f of frames) assert.ok(parseIPv4(f).checksumValid && parseUDP(f).checksumValid);
  });

  await t.step("frames larger than a buffer go as several slots (-l 5000), -F splits", async () => {
    const r = await runTool(
      "pkt-gen",
      ["-i", "vale0:gen", "-f", "tx", "-n", "20", "-l", "5000"],
      run.dir,
    );
    assert.equal(r.code, 0, r.stderr);
    const big = await collect(port, 20);
    assert.equal(big.length, 20);
    for (const f of big) {
      assert.equal(f.length, 5000);
      assert.ok(parseUDP(f).checksumValid);
    }
    const r2 = await runTool("pkt-gen", [
      "-i",
      "vale0:gen",
      "-f",
      "tx",
      "-n",
      "10",
      "-l",
      "120",
      "-F",
      "3",
    ], run.dir);
    assert.equal(r2.code, 0, r2.stderr);
    const frag = await collect(port, 10);
    assert.deepEqual(frag.map((f) => f.length), new Array(10).fill(120));
    assert.ok(frag.every((f) => parseUDP(f).checksumValid));
    assert.equal(portOf(run.dir, "vale0", "gen"), undefined, "ephemeral port gone with pkt-gen");
  });

  await t.step("txseq numbers packets 0, 1, 2, ... with valid checksums", async () => {
    const r = await runTool(
      "pkt-gen",
      ["-i", "vale0:gen", "-f", "txseq", "-n", "300", "-b", "32"],
      run.dir,
    );
    assert.equal(r.code, 0, r.stderr);
    const frames = await collect(port, 300);
    assert.deepEqual(frames.map(decodeTxSeq), [...Array(300).keys()]);
    assert.ok(frames.every((f) => parseUDP(f).checksumValid));
  });

  await t.step("-P FILE sends the pcap's packets in turn, as they are; -X dumps them", async () => {
    const pkt = buildUdpFrame({ length: 77, srcIp: "192.168.1.1", dstIp: "192.168.1.2" });
    pkt[76] = 0xab;
    const other = buildUdpFrame();
    const file = `${run.dir}/one.pcap`;
    Deno.writeFileSync(file, encodePcap([pkt, other]));
    const r = await runTool(
      "pkt-gen",
      ["-i", "vale0:gen", "-f", "tx", "-n", "3", "-P", file, "-X"],
      run.dir,
    );
    Deno.removeSync(file);
    assert.equal(r.code, 0, r.stderr);
    const got = await collect(port, 3);
    assert.deepEqual(got, [pkt, other, pkt]); // every packet of the file, in turn
    // netmap's dump_payload: a slot line, then offset, 16 hex bytes, ASCII
    assert.match(r.stdout, /^ring 0x[0-9a-f]+ cur +\d+ \[buf +\d+ flags 0x0000 len +77\]$/m);
    assert.match(
      r.stdout,
      /^ {4}0: ff ff ff ff ff ff 00 00 00 00 00 00 08 00 45 10 +\.{12}\.\.E\.$/m,
    );
    assert.equal(summary(r.stdout)!.size, Math.floor((2 * 77 + other.length) / 3));
  });
});

Deno.test("pkt-gen -R holds the rate within 2 % over 5 s; -n stops at exactly N", async () => {
  await using run = await tempRunDir();
  const N = 50000;
  const rx = startTool(
    "pkt-gen",
    ["-i", "vale0:rx@conf:slots=4096", "-f", "rx", "-n", `${N}`, "-W"],
    run.dir,
  );
  await rx.waitFor(/reading from/);
  const tx = await runTool("pkt-gen", [
    "-i",
    "vale0:tx",
    "-f",
    "tx",
    "-R",
    "10000",
    "-n",
    `${N}`,
    "-T",
    "500",
  ], run.dir);
  const dropped = ringDrops(run.dir, "vale0", "rx");
  const r = await rx.within();
  assert.equal(tx.code, 0, tx.stderr);
  const s = summary(tx.stdout)!;
  assert.equal(s.pkts, N, "exactly -n packets");
  assert.equal(summary(r.stdout)!.pkts + dropped, N, "all of them arrived or were counted");
  // 50000 packets at 10000 pps: 5 s by pkt-gen's own clock, within 2 %
  assert.ok(Math.abs(s.secs - 5) <= 0.1, `took ${s.secs} s`);
  // the rate lines (every 500 ms) add up to the packets sent, and show the rate
  const lines = rateLines(tx.stderr);
  assert.ok(lines.length >= 8, tx.stderr);
  assert.equal(lines.reduce((t, l) => t + l.pkts, 0), N);
  const mid = lines.slice(1, -1).map((l) => l.pps).sort((x, y) => x - y);
  assert.ok(
    Math.abs(mid[mid.length >> 1] - 10000) <= 200,
    `median rate line ${mid[mid.length >> 1]} pps`,
  );
});

Deno.test("pkt-gen on a pipe: back-pressure, no drops, exact at full speed; SIGINT prints the summary", async () => {
  await using run = await tempRunDir();
  const N = 200000;
  const rx = startTool(
    "pkt-gen",
    ["-i", "vale0:p}1", "-f", "rx", "-n", `${N}`, "-l", "1514"],
    run.dir,
  );
  await rx.waitFor(/reading from/);
  const tx = await runTool(
    "pkt-gen",
    ["-i", "vale0:p{1", "-f", "tx", "-n", `${N}`, "-l", "1514"],
    run.dir,
  );
  const r = await rx.within();
  assert.equal(summary(tx.stdout)!.pkts, N);
  assert.deepEqual([summary(r.stdout)!.pkts, summary(r.stdout)!.bytes], [N, N * 1514]);

  // forever, until Ctrl-C: both print their summary and exit 0
  const rx2 = startTool("pkt-gen", ["-i", "vale0:q}1", "-f", "rx"], run.dir);
  await rx2.waitFor(/reading from/);
  const tx2 = startTool("pkt-gen", ["-i", "vale0:q{1", "-f", "tx", "-T", "200"], run.dir);
  await tx2.waitFor(PERIODIC);
  tx2.signal("SIGINT");
  const t2 = await tx2.within();
  assert.equal(t2.code, 0, t2.stderr);
  assert.match(t2.stderr, /sigint_h \[\d+\] received control-C/);
  const sent = summary(t2.stdout)!.pkts;
  assert.ok(sent > 0);
  await until(() => rateLines(rx2.stderr()).length > 0, 5000, "an rx rate line");
  rx2.signal("SIGINT");
  const r2 = await rx2.within();
  assert.equal(r2.code, 0);
  // a pipe never drops: what was sent was received (or is still in the ring)
  const got = summary(r2.stdout)?.pkts ?? 0;
  assert.ok(got <= sent && got >= sent - 1024, `sent ${sent}, received ${got}`);
});

Deno.test("pkt-gen -p 2: one thread per ring pair", async () => {
  await using run = await tempRunDir();
  const N = 20000;
  const rx = startTool("pkt-gen", [
    "-i",
    "vale0:r@conf:rings=2,slots=4096",
    "-f",
    "rx",
    "-p",
    "2",
    "-n",
    `${N}`,
    "-W",
  ], run.dir);
  await rx.waitFor(/reading from .* fd/);
  const tx = await runTool("pkt-gen", [
    "-i",
    "vale0:t",
    "-C",
    "0,0,2",
    "-f",
    "tx",
    "-p",
    "2",
    "-n",
    `${N}`,
    "-R",
    "40000",
  ], run.dir);
  const dropped = ringDrops(run.dir, "vale0", "r");
  const r = await rx.within();
  assert.equal(tx.code, 0, tx.stderr);
  assert.match(tx.stdout, /^Sending on vale0:t: 2 queues, 2 threads and 1 cpus\./);
  assert.equal(summary(tx.stdout)!.pkts, N);
  assert.match(r.stdout, /^Receiving from .*: 2 queues, 2 threads/);
  assert.equal(summary(r.stdout)!.pkts + dropped, N);
  // too many threads for the rings
  const bad = await runTool("pkt-gen", ["-i", "vale0:one", "-f", "tx", "-p", "3"], run.dir);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /bad nthreads 3, have 1 queues/);
});

Deno.test("pkt-gen ping / pong: RTT lines, histogram, final line", async () => {
  await using run = await tempRunDir();
  const pong = startTool("pkt-gen", ["-i", "vale0:pong", "-f", "pong"], run.dir);
  await pong.waitFor(/reading from|start, fd/);
  const ping = await runTool("pkt-gen", [
    "-i",
    "vale0:ping",
    "-f",
    "ping",
    "-n",
    "3000",
    "-R",
    "2000",
  ], run.dir);
  pong.signal("SIGINT");
  const po = await pong.within();
  assert.equal(ping.code, 0, ping.stderr);
  assert.equal(po.code, 0, po.stderr);
  assert.match(ping.stdout, /^Working on vale0:ping: 1 queues, 1 threads and 1 cpus\.$/m);
  // every second: "count N RTT: min X av Y ns", then "k: A .. B" and the bucket counts
  const m = ping.stderr.match(/ping_body \[\d+\] count (\d+) RTT: min (\d+) av (\d+) ns\n/);
  assert.ok(m, ping.stderr);
  assert.ok(+m[1] > 0 && +m[2] > 0 && +m[3] >= +m[2]);
  const h = ping.stderr.match(/ping_body \[\d+\] k: (\d+) \.\. (\d+)\n\t((?: +\d+)+)\n/);
  assert.ok(h, ping.stderr);
  assert.ok(+h[1] <= +h[2]);
  const fin = ping.stderr.match(/ping_body \[\d+\] RTT over 3000 packets: min (\d+) av (\d+) ns/);
  assert.ok(fin, ping.stderr);
  assert.ok(+fin[1] > 0 && +fin[2] >= +fin[1]);
  assert.doesNotMatch(ping.stdout, /^(Sent|Received)/m, "ping has no tx summary (as netmap)");
  // the reply went back to ping: pong sent exactly what ping sent
  assert.ok(summary(po.stdout) === null);
  const pongSent = rateLines(po.stderr).reduce((s, l) => s + l.pkts, 0);
  assert.equal(pongSent, 3000);
});

Deno.test("pkt-gen rxseq reports gaps (drops) and reordering", async (t) => {
  await using run = await tempRunDir();
  await t.step("gaps: a small RX ring behind a fast txseq", async () => {
    const N = 50000;
    const rx = startTool(
      "pkt-gen",
      ["-i", "vale0:seq@conf:rx-slots=64", "-f", "rxseq", "-W"],
      run.dir,
    );
    await rx.waitFor(/reading from/);
    // batches of 512 every 2.5 ms into a 64-slot ring: each batch loses most of itself,
    // and however late the receiver wakes up it sees several batches, hence gaps
    const tx = await runTool(
      "pkt-gen",
      ["-i", "vale0:src", "-f", "txseq", "-n", `${N}`, "-R", "200000"],
      run.dir,
    );
    const dropped = portOf(run.dir, "vale0", "seq")!.counters.drops.ring_full;
    const r = await rx.within();
    assert.equal(summary(tx.stdout)!.pkts, N);
    const got = summary(r.stdout)!.pkts;
    assert.equal(got + dropped, N, "received + dropped = sent");
    assert.ok(dropped > 0, "the 64-slot ring overflowed");
    const s = r.stderr.match(/sequence: (\d+) gaps \((\d+) packets missing\), (\d+) out of order/)!;
    assert.ok(s, r.stderr);
    assert.ok(+s[1] > 0, `gaps reported: ${s[0]}, received ${got}, dropped ${dropped}`);
    assert.ok(+s[2] <= dropped && +s[2] > 0, `missing ${s[2]} <= dropped ${dropped}`);
    assert.equal(+s[3], 0);
    assert.match(r.stderr, /rxseq_body \[\d+\] Sequence GAP: exp \d+ found \d+/);
  });
  await t.step("reordering and gaps in frames sent out of order", async () => {
    const rx = startTool("pkt-gen", ["-i", "vale0:seq2", "-f", "rxseq", "-W"], run.dir);
    await rx.waitFor(/reading from/);
    using p = openPort("vale0:mine", { runDir: run.dir });
    for (const seq of [0, 1, 2, 5, 3, 4, 6]) {
      const f = buildUdpFrame();
      encodeTxSeq(f, seq);
      p.send(f);
    }
    p.txsync();
    const r = await rx.within();
    assert.equal(summary(r.stdout)!.pkts, 7);
    // 5 after 2: gap of 2; 3 after 5: out of order; 6 after 4: gap of 1 (netmap's rules)
    assert.match(r.stderr, /sequence: 2 gaps \(3 packets missing\), 1 out of order/);
    assert.match(r.stderr, /Sequence GAP: exp 3 found 5/);
    assert.match(r.stderr, /Sequence OUT OF ORDER: exp 6 found 3/);
  });
});

Deno.test("pkt-gen -P with bad inputs: one line, what and where, non-zero status, at once", async (t) => {
  await using run = await tempRunDir();
  const dir = await Deno.makeTempDir({ prefix: "vale-pktgen-P-" });
  try {
    const fifo = `${dir}/fifo`;
    assert.ok(new Deno.Command("mkfifo", { args: [fifo] }).outputSync().success);
    const good = encodePcap([buildUdpFrame({ length: 60 }), buildUdpFrame({ length: 100 })]);
    Deno.writeFileSync(`${dir}/truncated.pcap`, good.subarray(0, 24 + 16 + 30));
    const huge = good.slice(0, 24 + 16 + 60);
    new DataView(huge.buffer).setUint32(24 + 8, 0x7fffffff, true); // caplen
    new DataView(huge.buffer).setUint32(24 + 12, 0x7fffffff, true); // len
    new DataView(huge.buffer).setUint32(16, 0xffffffff, true); // snaplen
    Deno.writeFileSync(`${dir}/huge-caplen.pcap`, huge);
    Deno.writeFileSync(`${dir}/garbage.pcap`, new TextEncoder().encode("<html>not a pcap</html>"));
    Deno.writeFileSync(`${dir}/header-only.pcap`, good.subarray(0, 24));
    const cases: [string, string, RegExp][] = [
      ["/dev/zero", "/dev/zero", /is a character device, not a regular file$/],
      ["a FIFO (nobody writes)", fifo, /is a FIFO \(named pipe\), not a regular file$/],
      ["a directory", dir, /is a directory, not a regular file$/],
      ["a missing file", `${dir}/nope.pcap`, /cannot open: no such file$/],
      [
        "a truncated file",
        `${dir}/truncated.pcap`,
        /record body cut short: caplen 60 but only 30 bytes .* at byte offset 24 \(after 0/,
      ],
      [
        "a record with a huge caplen",
        `${dir}/huge-caplen.pcap`,
        /caplen 2147483647 is over the 65536-byte limit at byte offset 24/,
      ],
      ["a garbage header", `${dir}/garbage.pcap`, /bad magic 0x3c68746d .* at byte offset 0/],
      ["a header and no packet", `${dir}/header-only.pcap`, /no packet in the file/],
    ];
    for (const [what, path, re] of cases) {
      await t.step(what, async () => {
        const t0 = Date.now();
        const r = await startTool("pkt-gen", ["-i", "vale0:p", "-f", "tx", "-P", path], run.dir)
          .within(20000);
        assert.equal(r.code, 255, r.stderr);
        const lines = r.stderr.split("\n").filter((l) => l.startsWith("pkt-gen:"));
        assert.equal(lines.length, 1, r.stderr);
        assert.ok(lines[0].startsWith(`pkt-gen: -P ${path}: `), lines[0]);
        assert.match(lines[0], re);
        // no stack trace, no usage text, nothing sent
        assert.doesNotMatch(r.stderr, /^\s+at |Uncaught|Usage:/m, r.stderr);
        assert.equal(r.stdout, "");
        assert.ok(Date.now() - t0 < 15000, `${what}: took ${Date.now() - t0} ms`);
      });
    }
    await t.step("a sparse 16 GiB file: only its first packets are read", async () => {
      const big = `${dir}/big.pcap`;
      {
        using f = Deno.openSync(big, { write: true, create: true });
        f.writeSync(good);
        f.truncateSync(16 * 1024 * 1024 * 1024);
      }
      const r = await startTool(
        "pkt-gen",
        ["-i", "vale0:p", "-f", "tx", "-n", "1", "-P", big],
        run.dir,
      ).within(20000);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(summary(r.stdout)!.size, 60);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
