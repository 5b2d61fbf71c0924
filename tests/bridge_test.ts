// bridge as a user runs it (bin/bridge in a subprocess): forwarding both
// ways with exact counts, between switch ports and pipes, copy or zero-copy.
import assert from "node:assert/strict";
import { tempRunDir } from "./helpers/procs.ts";
import { portOf, rateLines, runTool, startTool, summary } from "./helpers/tools.ts";

const READY = /Ready to go, /;

/** The per-direction counts bridge prints when it stops. */
function counts(stderr: string): number[] {
  const m = stderr.match(/main \[\d+\] (.*)$/m);
  const all = [...stderr.matchAll(/-> \S+: (\d+) packets (\d+) bytes/g)];
  assert.ok(m && all.length, stderr);
  return all.map((x) => +x[1]);
}

Deno.test("bridge --help and wrong usage", async () => {
  await using run = await tempRunDir();
  const h = await runTool("bridge", ["--help"], run.dir);
  assert.equal(h.code, 0);
  assert.match(
    h.stdout,
    /^netmap bridge program: forward packets between two network interfaces\n/,
  );
  for (const o of ["-i port", "-b burst", "-w seconds", "-c ", "-L ", "-v "]) {
    assert.ok(h.stdout.includes(o), `documents ${o}`);
  }
  const bad = await runTool("bridge", ["-x"], run.dir);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bridge: invalid option -- 'x'/);
  assert.match(bad.stderr, /usage\(1\): bridge/);
  const none = await runTool("bridge", [], run.dir);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /missing interface/);
  // one vale port without -L means "with its host stack", which a vale port has not
  const host = await runTool("bridge", ["-i", "vale0:x"], run.dir);
  assert.equal(host.code, 1);
  assert.match(host.stderr, /same interface, endpoint 0 goes to host/);
  assert.match(host.stderr, /cannot open vale0:x\^/);
  const burst = startTool("bridge", ["-i", "vale0:a", "-i", "vale1:b", "-b", "9000"], run.dir);
  await burst.waitFor(READY);
  assert.match(burst.stderr(), /invalid burst 9000, set to 1024/);
  burst.signal("SIGINT");
  assert.equal((await burst.within()).code, 0);
  assert.deepEqual([...Deno.readDirSync(run.dir)], []);
});

Deno.test("bridge between two switches: both ways, exact counts, copy", async () => {
  await using run = await tempRunDir();
  // deep rings and paced senders, so that normally nothing drops; a machine
  // busy enough to keep a process off the CPU for long still gets every
  // packet accounted for: received + counted drops = sent, exactly. The
  // receivers are persistent ports (vale-ctl), so their counters outlive pkt-gen.
  const deep = "@conf:slots=4096";
  const br = startTool("bridge", ["-i", `vale0:up${deep}`, "-i", `vale1:down${deep}`], run.dir);
  await br.waitFor(READY);
  assert.match(br.stderr(), /^bridge built /);
  assert.match(br.stderr(), /main \[\d+\] ------- zerocopy NOT supported/);
  assert.match(br.stderr(), /Ready to go, vale0:up 0x0\/1 <-> vale1:down 0x0\/1\./);

  const drops = (sw: string, p: string) => {
    const d = portOf(run.dir, sw, p)!.counters.drops;
    return d.ring_full + d.bad_slot + d.no_dest + d.lookup + d.bad_vnet + d.too_big;
  };
  const oneWay = async (from: string, to: string, rport: string, n: number, len: number) => {
    // the receiver is attached now, so that it holds nothing of the other direction
    assert.equal((await runTool("vale-ctl", ["-n", rport, "-C", "4096"], run.dir)).code, 0);
    assert.equal((await runTool("vale-ctl", ["-a", `${to}:${rport}`], run.dir)).code, 0);
    const before = drops("vale0", "up") + drops("vale1", "down");
    const rx = startTool(
      "pkt-gen",
      ["-i", `${to}:${rport}`, "-f", "rx", "-n", `${n}`, "-W"],
      run.dir,
    );
    await rx.waitFor(/reading from/);
    const tx = await runTool(
      "pkt-gen",
      ["-i", `${from}:s`, "-f", "tx", "-n", `${n}`, "-R", "20000", "-l", `${len}`],
      run.dir,
    );
    assert.equal(summary(tx.stdout)!.pkts, n);
    const r = summary((await rx.within()).stdout)!;
    assert.equal(r.bytes, r.pkts * len);
    const lost = drops("vale0", "up") + drops("vale1", "down") - before + drops(to, rport);
    assert.equal(r.pkts + lost, n, `received ${r.pkts} + dropped ${lost} = sent ${n}`);
    if (lost) console.warn(`(a busy machine: ${lost} packets dropped on the way, all counted)`);
    return r.pkts;
  };
  const N = 20000, M = 15000;
  const ab = await oneWay("vale0", "vale1", "r1", N, 1000);
  const ba = await oneWay("vale1", "vale0", "r0", M, 64);

  // what bridge forwarded is what entered the other switch
  const intoVale1 = portOf(run.dir, "vale1", "down")!.counters.tx_packets;
  const intoVale0 = portOf(run.dir, "vale0", "up")!.counters.tx_packets;
  br.signal("SIGINT");
  const b = await br.within();
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(counts(b.stderr), [intoVale1, intoVale0]);
  assert.ok(intoVale1 >= ab && intoVale0 >= ba);
  if (ab === N && ba === M) {
    assert.match(
      b.stderr,
      new RegExp(
        `vale0:up -> vale1:down: ${N} packets ${N * 1000} bytes; ` +
          `vale1:down -> vale0:up: ${M} packets ${M * 64} bytes`,
      ),
    );
  }
  assert.equal((await runTool("vale-ctl", ["--remove-switch", "vale0"], run.dir)).code, 0);
  assert.equal((await runTool("vale-ctl", ["--remove-switch", "vale1"], run.dir)).code, 0);
  for (const r of ["r0", "r1"]) {
    assert.equal((await runTool("vale-ctl", ["-r", r], run.dir)).code, 0);
  }
  assert.deepEqual([...Deno.readDirSync(run.dir)], [], "every port and switch gone");
});

Deno.test("bridge between pipes at full speed: back-pressure end to end, exact", async () => {
  await using run = await tempRunDir();
  // pkt-gen -> p{1 ~ p}1 == bridge == q{1 ~ q}1 -> pkt-gen: nothing may drop
  const br = startTool("bridge", ["-i", "vale0:p}1", "-i", "vale0:q{1"], run.dir);
  await br.waitFor(READY);
  assert.match(br.stderr(), /zerocopy NOT supported/);
  const N = 300000;
  const rx = startTool("pkt-gen", ["-i", "vale0:q}1", "-f", "rx", "-n", `${N}`], run.dir);
  await rx.waitFor(/reading from/);
  const tx = await runTool("pkt-gen", [
    "-i",
    "vale0:p{1",
    "-f",
    "tx",
    "-n",
    `${N}`,
    "-l",
    "1514",
    "-l",
    "60",
  ], run.dir);
  const r = await rx.within();
  const ts = summary(tx.stdout)!, rs = summary(r.stdout)!;
  assert.equal(ts.pkts, N);
  assert.deepEqual([rs.pkts, rs.bytes], [N, ts.bytes], "every packet, every byte");
  br.signal("SIGINT");
  const b = await br.within();
  assert.deepEqual(counts(b.stderr), [N, 0]);
});

Deno.test("bridge zero-copy: a pipe end looped back (-L) answers ping; -c copies", async () => {
  await using run = await tempRunDir();
  for (const copy of [false, true]) {
    const br = startTool("bridge", ["-L", ...(copy ? ["-c"] : []), "-i", "vale0:x}1"], run.dir);
    await br.waitFor(READY);
    assert.match(br.stderr(), /same interface, loopbacking traffic/);
    assert.match(br.stderr(), copy ? /zerocopy NOT supported/ : /------- zerocopy supported/);
    const ping = await runTool("pkt-gen", ["-i", "vale0:x{1", "-f", "ping", "-n", "2000"], run.dir);
    assert.equal(ping.code, 0, ping.stderr);
    assert.match(ping.stderr, /RTT over 2000 packets: min \d+ av \d+ ns/);
    br.signal("SIGINT");
    const b = await br.within();
    assert.equal(b.code, 0);
    assert.match(b.stderr, /vale0:x}1 -> vale0:x}1: 2000 packets 120000 bytes/);
  }
  // the two ends of one pipe share memory: zero-copy between them
  const both = startTool("bridge", ["-i", "vale0:y{1", "-i", "vale0:y}1"], run.dir);
  await both.waitFor(READY);
  assert.match(both.stderr(), /------- zerocopy supported/);
  both.signal("SIGINT");
  assert.equal((await both.within()).code, 0);
});

Deno.test("bridge -v prints a line per second with each direction's counts", async () => {
  await using run = await tempRunDir();
  const br = startTool("bridge", ["-v", "-i", "vale0:a", "-i", "vale1:b"], run.dir);
  await br.waitFor(READY);
  const rx = startTool("pkt-gen", ["-i", "vale1:r", "-f", "rx", "-n", "3000"], run.dir);
  await rx.waitFor(/reading from/);
  await runTool("pkt-gen", ["-i", "vale0:s", "-f", "tx", "-n", "3000", "-R", "3000"], run.dir);
  assert.equal(summary((await rx.within()).stdout)!.pkts, 3000);
  await br.waitFor(/vale0:a -> vale1:b 3000 pkts \(\d+ pps\), vale1:b -> vale0:a 0 pkts \(0 pps\)/);
  br.signal("SIGINT");
  await br.within();
  assert.ok(rateLines(br.stderr()).length === 0, "no pkt-gen style lines from bridge");
});
