// libpcap programs on vale ports through build/libvale-pcap.so (docs/pcap.md):
// Debian's tcpdump, tshark (through dumpcap) and tcpreplay, unmodified, and a
// plain libpcap program (tests/pcap/pcap_probe.c), run as a user runs them
// with bin/vale-pcap. Every count is exact; frames are compared byte for byte.
import { OpenFlags } from "../ffi/structs/open_req.ts";
import assert from "node:assert/strict";
import { buildLibrary } from "../scripts/build.ts";
import { encodePcap, readPcapFileSync } from "../lib/formats/pcap.ts";
import { openPort } from "../lib/open.ts";
import { parsePortName, PortNameError } from "../lib/names.ts";
import { portCounters } from "../lib/switch/control.ts";
import { tempRunDir } from "./helpers/procs.ts";
import { until } from "./helpers/tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const WRAP = `${ROOT}bin/vale-pcap`;
await buildLibrary({ quiet: true });
const LIB = `${ROOT}build/libvale-pcap.so`;

function have(cmd: string, args = ["--version"]): boolean {
  try {
    new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}
const root = Deno.uid() === 0;
const tcpdump = have("tcpdump");
const tshark = have("tshark", ["-v"]);
const tcpreplay = have("tcpreplay", ["-V"]);
const pcapDev = (() => {
  try {
    return Deno.statSync("/usr/include/pcap/pcap.h").isFile && have("cc");
  } catch {
    return false;
  }
})();
const skip = (what: string, ok: boolean, why: string) =>
  ok ? what : `${what} (skipped: ${why}; scripts/install-deps.sh installs it)`;

const dec = new TextDecoder();

/** A tool under the wrapper, its stderr collected as it comes. */
class Tool {
  proc: Deno.ChildProcess;
  err = "";
  out = "";
  #done: Promise<void>;
  constructor(run: string, args: string[]) {
    this.proc = new Deno.Command(WRAP, {
      args,
      env: { VALE_RUN_DIR: run },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (s: ReadableStream<Uint8Array>, k: "err" | "out") => {
      for await (const c of s) this[k] += dec.decode(c, { stream: true });
    };
    this.#done = Promise.all([pump(this.proc.stderr, "err"), pump(this.proc.stdout, "out")])
      .then(() => {});
  }
  /** Wait (bounded) until stderr or stdout matches. */
  async waitFor(re: RegExp, ms = 20000): Promise<void> {
    for (let t = 0; t < ms; t += 50) {
      if (re.test(this.err) || re.test(this.out)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.kill("SIGKILL");
    throw new Error(`timed out waiting for ${re}; stderr: ${this.err}; stdout: ${this.out}`);
  }
  kill(sig: Deno.Signal = "SIGINT") {
    try {
      this.proc.kill(sig);
    } catch { /* gone */ }
  }
  /** Exit status, after the output is read (killed if it takes longer than ms). */
  async done(ms = 30000): Promise<Deno.CommandStatus> {
    const timer = setTimeout(() => this.kill("SIGKILL"), ms);
    const st = await this.proc.status;
    await this.#done;
    clearTimeout(timer);
    return st;
  }
}

/** An Ethernet/IPv4/UDP frame to broadcast (flooded to every port), dst port `dport`. */
function udpFrame(seq: number, dport: number, len = 80): Uint8Array {
  const f = new Uint8Array(len);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, 0x01], 6);
  const dv = new DataView(f.buffer);
  dv.setUint16(12, 0x0800);
  f[14] = 0x45;
  dv.setUint16(16, len - 14);
  f[22] = 64;
  f[23] = 17;
  f.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
  dv.setUint16(34, 5000);
  dv.setUint16(36, dport);
  dv.setUint16(38, len - 34);
  dv.setUint32(42, seq);
  for (let i = 46; i < len; i++) f[i] = (seq + i) & 0xff;
  return f;
}

/** Send frames from a port of ours, txsync in batches. */
function sendAll(port: ReturnType<typeof openPort>, frames: Uint8Array[]) {
  let i = 0;
  while (i < frames.length) {
    let n = 0;
    while (i < frames.length && n < 64 && port.send(frames[i])) i++, n++;
    port.txsync();
  }
}

// ---------------------------------------------------------------------------

Deno.test("the interposer's name grammar agrees with lib/names.ts", () => {
  const lib = Deno.dlopen(LIB, {
    vale_pcap_parse_name: { parameters: ["buffer", "buffer", "u32"], result: "i32" },
  });
  try {
    const names = [
      "vale0:a",
      "vale:0",
      "vale0:br-lan",
      "vale0:a-1",
      "vale0:a.b_c",
      "vale_x:p{3",
      "vale0:p}abc",
      "vale0:p{3-1",
      "vale0:a/x",
      "vale0:a/R",
      "vale0:a/T",
      "valeABCDEFGHIJK:a",
      "valeABCDEFGHIJKL:a",
      "vale0:",
      "vale0",
      "vale0:a&",
      "vale0:.a",
      "vale0:-a",
      "vale0:a-",
      "vale0:a-1-0",
      "vale0:a--0",
      "vale0:a-5000",
      "vale0:abcdefghijklmnop",
      "vale0:a{",
      "vale0:a{1{2",
      "vale0:a/q",
      "vale0:a/",
      "vale0:a/RT",
      "vale0:a b",
      "vale0:a\tb",
      "vale0:a\u00e9",
      // 2012 names: the switch up to the first ':', or a port of switch "vale"
      "vale-a:1",
      "vale-1:a",
      "vale-foo",
      "vale-bar/x",
      "vale-1",
      "vale0",
      "valeabcdefghijklm",
      "vale.x:a",
      "vale-a:b-2",
      "vale-a:p{1",
      "vale{1",
      "vale#:a",
      "vale a:b",
      "vale-a{1:b",
      "vale-a:b:c",
      "vale/a:b",
      // monitors
      "vale0:a/r",
      "vale0:a/t",
      "vale0:a/rt",
      "vale0:a/z",
      "vale0:a/zt",
      "vale-foo/r",
    ];
    const out = new Uint8Array(512);
    for (const name of names) {
      const r = lib.symbols.vale_pcap_parse_name(
        new TextEncoder().encode(name + "\0"),
        out,
        out.length,
      );
      const text = dec.decode(out.subarray(0, out.indexOf(0)));
      let ts;
      try {
        ts = parsePortName(name);
      } catch (e) {
        if (!(e instanceof PortNameError)) throw e;
        assert.equal(r, -1, `${name}: names.ts refuses it (${e.message}) but C took ${text}`);
        assert.match(text, /^invalid port name '/, name);
        continue;
      }
      assert.equal(r, 0, `${name}: names.ts takes it, C says ${text}`);
      const [sw, port, ring, flags] = text.split("\t");
      assert.equal(sw, ts.switchName, name);
      const key = ts.port + (ts.pipe ? (ts.pipe.role === "master" ? "{" : "}") + ts.pipe.id : "");
      assert.equal(port, key, name);
      assert.equal(Number(ring), ts.mode === "one-nic" ? ts.ring : -1, name);
      const F = OpenFlags;
      const want = (ts.flags.exclusive ? F.VO_EXCLUSIVE : 0) |
        (ts.pipe?.role === "master" ? F.VO_PIPE_MASTER : 0) |
        (ts.pipe?.role === "slave" ? F.VO_PIPE_SLAVE : 0) | (ts.flags.rxOnly ? F.VO_RX_ONLY : 0) |
        (ts.flags.txOnly ? F.VO_TX_ONLY : 0) | (ts.flags.txMonitor ? F.VO_MONITOR_TX : 0) |
        (ts.flags.rxMonitor ? F.VO_MONITOR_RX : 0) |
        (ts.flags.zcopyMonitor ? F.VO_MONITOR_ZCOPY : 0);
      assert.equal(Number(flags), want, name);
    }
    // what names.ts takes but a capture cannot open is refused, saying why
    for (
      const [name, why] of [
        ["vale0:a^", /host rings/],
        ["vale0:a*", /host rings/],
        ["vale0:a@conf:rings=2", /'@' options/],
        ["vale0:a@2", /'@' options/],
      ] as const
    ) {
      parsePortName(name);
      const r = lib.symbols.vale_pcap_parse_name(
        new TextEncoder().encode(name + "\0"),
        out,
        out.length,
      );
      assert.equal(r, -1, name);
      assert.match(dec.decode(out.subarray(0, out.indexOf(0))), why, name);
    }
  } finally {
    lib.close();
  }
});

Deno.test({
  name: skip("tcpdump: a BPF filter, exact counts, bytes, and stats", tcpdump, "no tcpdump"),
  ignore: !tcpdump,
  async fn() {
    await using run = await tempRunDir();
    const file = `${run.dir}/cap.pcap`;
    const td = new Tool(run.dir, ["tcpdump", "-ni", "vale0:cap", "-w", file, "udp dst port 2000"]);
    await td.waitFor(/listening on vale0:cap/);
    using src = openPort("vale0:src", { runDir: run.dir });
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 500; i++) frames.push(udpFrame(i, i % 5 < 3 ? 2000 : 3000, 60 + i % 900));
    sendAll(src, frames);
    // every frame reached the capture port's ring; then tcpdump has read them all
    await until(
      () => portCounters("vale0:cap", { runDir: run.dir }).rx_packets === 500,
      20000,
      "500 frames delivered",
    );
    await new Promise((r) => setTimeout(r, 300));
    td.kill("SIGINT");
    const st = await td.done();
    assert.equal(st.code, 0, td.err);
    assert.match(td.err, /^300 packets captured$/m);
    assert.match(td.err, /^500 packets received by filter$/m);
    assert.match(td.err, /^0 packets dropped by kernel$/m);
    const r = readPcapFileSync(file);
    assert.equal(r.error ?? undefined, undefined);
    const want = frames.filter((_, i) => i % 5 < 3);
    assert.equal(r.records.length, 300);
    for (let i = 0; i < 300; i++) assert.deepEqual(r.records[i].data, want[i], `frame ${i}`);
  },
});

Deno.test({
  name: skip("tcpdump -s, --nano and -c: snap length and precision in the file", tcpdump, "none"),
  ignore: !tcpdump,
  async fn() {
    await using run = await tempRunDir();
    const file = `${run.dir}/cap.pcap`;
    const td = new Tool(run.dir, [
      "tcpdump",
      "-ni",
      "vale0:cap",
      "-s",
      "100",
      "--nano",
      "-c",
      "7",
      "-w",
      file,
    ]);
    await td.waitFor(/listening on vale0:cap.*snapshot length 100 bytes/);
    using src = openPort("vale0:src", { runDir: run.dir });
    // 7 frames, two of them longer than a 2048-byte buffer (MOREFRAG chains)
    const lens = [60, 150, 1514, 2048, 2049, 5000, 9000];
    const frames = lens.map((l, i) => udpFrame(i, 2000, l));
    sendAll(src, frames);
    const st = await td.done();
    assert.equal(st.code, 0, td.err);
    assert.match(td.err, /^7 packets captured$/m);
    const r = readPcapFileSync(file);
    assert.equal(r.header?.snaplen, 100);
    assert.equal(r.header?.nanosecond, true);
    assert.equal(r.records.length, 7);
    r.records.forEach((rec, i) => {
      assert.equal(rec.origLen, lens[i]);
      assert.equal(rec.capLen, Math.min(lens[i], 100));
      assert.deepEqual(rec.data, frames[i].subarray(0, rec.capLen));
    });
  },
});

Deno.test({
  name: skip(
    "tcpdump: frames lost while it does not read are counted as dropped",
    tcpdump,
    "no tcpdump",
  ),
  ignore: !tcpdump,
  async fn() {
    await using run = await tempRunDir();
    const file = `${run.dir}/cap.pcap`;
    const td = new Tool(run.dir, ["tcpdump", "-ni", "vale0:cap", "-U", "-w", file]);
    await td.waitFor(/listening on vale0:cap/);
    using src = openPort("vale0:src", { runDir: run.dir });
    td.kill("SIGSTOP");
    const n = 3000;
    sendAll(src, Array.from({ length: n }, (_, i) => udpFrame(i, 2000)));
    const c = portCounters("vale0:cap", { runDir: run.dir });
    const dropped = c.drops.ring_full;
    assert.ok(dropped > 0 && c.rx_packets + dropped === n, JSON.stringify(c));
    td.kill("SIGCONT");
    await until(
      () => {
        try {
          return readPcapFileSync(file).records.length === n - dropped;
        } catch {
          return false;
        }
      },
      20000,
      "the captured frames written",
    );
    td.kill("SIGINT");
    const st = await td.done();
    assert.equal(st.code, 0, td.err);
    assert.match(td.err, new RegExp(`^${n - dropped} packets captured$`, "m"));
    assert.match(td.err, new RegExp(`^${n} packets received by filter$`, "m"));
    assert.match(td.err, new RegExp(`^${dropped} packets dropped by kernel$`, "m"));
  },
});

Deno.test({
  name: skip("tshark (dumpcap): a capture filter, exact count and bytes", tshark, "no tshark"),
  ignore: !tshark,
  async fn() {
    await using run = await tempRunDir();
    const file = `${run.dir}/cap.pcapng`;
    const ts = new Tool(run.dir, [
      "tshark",
      "-i",
      "vale0:ts",
      "-f",
      "udp dst port 2000",
      "-c",
      "200",
      "-w",
      file,
    ]);
    await ts.waitFor(/Capturing on 'vale0:ts'/);
    // dumpcap opens the port when it starts capturing: wait for it
    await until(
      () => {
        try {
          portCounters("vale0:ts", { runDir: run.dir });
          return true;
        } catch {
          return false;
        }
      },
      20000,
      "dumpcap's port",
    );
    using src = openPort("vale0:src", { runDir: run.dir });
    const frames = Array.from({ length: 400 }, (_, i) => udpFrame(i, i % 2 ? 3000 : 2000, 64));
    sendAll(src, frames);
    const st = await ts.done();
    assert.equal(st.code, 0, ts.err);
    assert.match(ts.err, /200 packets captured/);
    const r = readPcapFileSync(file);
    assert.equal(r.records.length, 200);
    const want = frames.filter((_, i) => i % 2 === 0);
    for (let i = 0; i < 200; i++) assert.deepEqual(r.records[i].data, want[i], `frame ${i}`);
  },
});

Deno.test({
  name: skip("tcpdump -D and tshark -D list the switches' ports", tcpdump && tshark, "no tools"),
  ignore: !tcpdump || !tshark,
  async fn() {
    await using run = await tempRunDir();
    using _a = openPort("vale0:listed", { runDir: run.dir });
    using _b = openPort("vale7:other", { runDir: run.dir });
    for (const cmd of [["tcpdump", "-D"], ["tshark", "-D"]]) {
      const t = new Tool(run.dir, cmd);
      const st = await t.done();
      assert.equal(st.code, 0, t.err);
      // tcpdump prints the description; tshark only the name
      assert.match(t.out, /^\d+\. ?vale0:listed( \(vale switch port\)|$)/m, t.out);
      assert.match(t.out, /^\d+\. ?vale7:other( |$)/m, t.out);
      assert.match(t.out, /^\d+\. ?lo\b/m, "the kernel's devices are still listed");
    }
  },
});

Deno.test({
  name: skip(
    "tcpreplay -i vale0:a injects a trace: every frame arrives byte for byte",
    tcpreplay && root,
    root ? "no tcpreplay" : "tcpreplay opens a PF_PACKET socket, which needs root",
  ),
  ignore: !tcpreplay || !root,
  async fn() {
    await using run = await tempRunDir();
    const lens = [60, 64, 128, 1514, 2048, 3000, 9000, 60, 1000, 200];
    const frames = lens.map((l, i) => udpFrame(i, 2000, l));
    const trace = `${run.dir}/trace.pcap`;
    Deno.writeFileSync(trace, encodePcap(frames));
    using rx = openPort("vale0:rx", { runDir: run.dir });
    const t = new Tool(run.dir, ["tcpreplay", "-i", "vale0:a", trace]);
    const st = await t.done();
    assert.equal(st.code, 0, t.err + t.out);
    assert.match(t.out, /Successful packets:\s+10\b/);
    const got: Uint8Array[] = [];
    for (let i = 0; i < 100 && got.length < 10; i++) got.push(...await rx.receive(100));
    assert.equal(got.length, 10);
    got.forEach((f, i) => assert.deepEqual(f, frames[i], `frame ${i}`));
    assert.equal(rx.pending(), 0);
  },
});

Deno.test({
  name: skip("tcpdump on monitors: vale0:a/rt both ways, /t with -Q out", tcpdump, "no tcpdump"),
  ignore: !tcpdump,
  async fn() {
    await using run = await tempRunDir();
    using a = openPort("vale0:a", { runDir: run.dir });
    using b = openPort("vale0:b", { runDir: run.dir });
    const both = `${run.dir}/rt.pcap`, out = `${run.dir}/t.pcap`;
    const rt = new Tool(run.dir, ["tcpdump", "-ni", "vale0:a/rt", "-c", "150", "-w", both]);
    const t = new Tool(run.dir, [
      "tcpdump",
      "-ni",
      "vale0:a/t",
      "-Q",
      "out",
      "-c",
      "100",
      "-w",
      out,
    ]);
    await rt.waitFor(/listening on vale0:a\/rt/);
    await t.waitFor(/listening on vale0:a\/t/);
    // -Q in on a monitor of both directions cannot be honoured: said, not ignored
    const q = new Tool(run.dir, ["tcpdump", "-ni", "vale0:a/rt", "-Q", "in", "-c", "1"]);
    assert.notEqual((await q.done()).code, 0);
    assert.match(q.err, /cannot tell them apart/);
    const fromA = Array.from({ length: 100 }, (_, i) => udpFrame(i, 2000, 60 + i));
    const toA = Array.from({ length: 50 }, (_, i) => udpFrame(1000 + i, 3000, 200 + i));
    sendAll(a, fromA); // copied to the monitors by a's txsync
    sendAll(b, toA);
    let got = 0; // copied to /rt by a's rxsync, when a takes them
    for (let i = 0; i < 100 && got < 50; i++) got += (await a.receive(100)).length;
    assert.equal(got, 50);
    for (const [tool, file, want] of [[rt, both, [...fromA, ...toA]], [t, out, fromA]] as const) {
      const st = await tool.done();
      assert.equal(st.code, 0, tool.err);
      const r = readPcapFileSync(file);
      assert.equal(r.records.length, want.length);
      r.records.forEach((rec, i) => assert.deepEqual(rec.data, want[i], `${file} frame ${i}`));
    }
    // b got a's 100 frames all the same: the monitors took nothing from it
    let atB = 0;
    for (let i = 0; i < 100 && atB < 100; i++) atB += (await b.receive(100)).length;
    assert.equal(atB, 100);
  },
});

let probe: string | undefined;
async function probeProg(): Promise<string> {
  if (probe) return probe;
  const out = `${ROOT}build/tests/pcap_probe`;
  Deno.mkdirSync(`${ROOT}build/tests`, { recursive: true });
  const r = await new Deno.Command("cc", {
    args: ["-O1", "-Wall", "-o", out, `${ROOT}tests/pcap/pcap_probe.c`, "-lpcap"],
    stderr: "piped",
  }).output();
  assert.ok(r.success, dec.decode(r.stderr));
  return (probe = out);
}

Deno.test({
  name: skip(
    "a libpcap program: pcap_inject/pcap_sendpacket, select() on the selectable fd, non-blocking dispatch, pcap_stats",
    pcapDev,
    "no libpcap headers (libpcap-dev) or no C compiler",
  ),
  ignore: !pcapDev,
  async fn() {
    await using run = await tempRunDir();
    const prog = await probeProg();
    const rd = new Tool(run.dir, [prog, "select", "vale0:rd", "300"]);
    await rd.waitFor(/^ready$/m);
    const nx = new Tool(run.dir, [prog, "next", "vale0:nx", "300"]);
    await nx.waitFor(/^ready$/m);
    const inj = new Tool(run.dir, [prog, "inject", "vale0:inj", "300", "3000"]);
    assert.equal((await inj.done()).code, 0, inj.err);
    assert.match(inj.out, /injected 300/);
    // the same 300 frames of 3000 bytes: byte k of frame i is (i + k) & 0xff, dst broadcast
    let sum = 0;
    for (let i = 0; i < 300; i++) {
      for (let k = 0; k < 3000; k++) sum += k < 6 ? 0xff : (i + k) & 0xff;
    }
    assert.equal((await rd.done()).code, 0, rd.err);
    const res = JSON.parse(rd.out.split("\n").find((l) => l.startsWith("{"))!);
    assert.equal(res.got, 300);
    assert.equal(res.sum, sum);
    assert.equal(res.idle_readable, 0, "no frame: the fd does not poll readable");
    assert.equal(res.idle_dispatch, 0, "no frame: a non-blocking dispatch returns 0");
    assert.equal(res.idle_fast, true, "... at once");
    assert.equal(res.recv, 300);
    assert.equal(res.drop, 0);
    assert.equal(res.ifdrop, 0);
    assert.equal((await nx.done()).code, 0, nx.err);
    const res2 = JSON.parse(nx.out.split("\n").find((l) => l.startsWith("{"))!);
    assert.deepEqual(res2, { got: 300, sum });
  },
});

Deno.test({
  name: skip(
    "a kernel device (lo) still works with the interposer loaded",
    tcpdump && root,
    "capturing on lo needs root",
  ),
  ignore: !tcpdump || !root,
  async fn() {
    await using run = await tempRunDir();
    const dgram = await import("node:dgram");
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    const port = (sock.address() as { port: number }).port;
    const td = new Tool(run.dir, ["tcpdump", "-ni", "lo", "-c", "5", `udp dst port ${port}`]);
    await td.waitFor(/listening on lo/);
    for (let i = 0; i < 5; i++) sock.send(new Uint8Array([i]), port, "127.0.0.1");
    const st = await td.done();
    sock.close();
    assert.equal(st.code, 0, td.err);
    assert.match(td.err, /^5 packets captured$/m);
    assert.equal(td.out.split("\n").filter((l) => l.includes(`.${port}: UDP`)).length, 5);
  },
});

Deno.test({
  name: skip("a malformed vale name: tcpdump says why and fails", tcpdump, "no tcpdump"),
  ignore: !tcpdump,
  async fn() {
    await using run = await tempRunDir();
    const t = new Tool(run.dir, ["tcpdump", "-ni", "vale0:a@conf:rings=2"]);
    const st = await t.done();
    assert.equal(st.code, 1);
    assert.match(t.err, /invalid port name 'vale0:a@conf:rings=2': '@' options/);
  },
});

// vale(4)'s first example, as written (bin/ paths), once the 2012 names exist
const names2012 = (() => {
  try {
    parsePortName("vale-a:1");
    return true;
  } catch {
    return false;
  }
})();
Deno.test({
  name: names2012
    ? "vale(4): tcpdump -ni vale-a:1 & pkt-gen -i vale-a:0 -f tx"
    : "vale(4): tcpdump -ni vale-a:1 & pkt-gen -i vale-a:0 -f tx (skipped: 2012 names such as 'vale-a:1' are not in lib/names.ts yet)",
  ignore: !names2012 || !tcpdump,
  async fn() {
    await using run = await tempRunDir();
    const td = new Tool(run.dir, ["tcpdump", "-ni", "vale-a:1", "-c", "100"]);
    await td.waitFor(/listening on vale-a:1/);
    const pg = await new Deno.Command(`${ROOT}bin/pkt-gen`, {
      args: ["-i", "vale-a:0", "-f", "tx", "-n", "100"],
      env: { VALE_RUN_DIR: run.dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(pg.success, dec.decode(pg.stderr));
    const st = await td.done();
    assert.equal(st.code, 0, td.err);
    assert.match(td.err, /^100 packets captured$/m);
    assert.equal(td.out.split("\n").filter((l) => /UDP, length/.test(l)).length, 100);
  },
});
