// The examples of vale(4), run as written (tools from bin/, each scenario in a
// private VALE_RUN_DIR): the seeds' man page example (tcpdump and pkt-gen on
// switch vale-a), the VALE project page's (pkt-gen on vale-foo and vale-bar),
// and vale-ctl's (persistent ports, listings, the mSwitch tutorial). The
// command lines are read from docs/man/vale.4's EXAMPLES section: every line
// there must be run here, and every line run here must be there verbatim.
// Commands that run until stopped (pkt-gen -f tx, tcpdump) are stopped with
// SIGINT, as a user stops them, once they have shown what they should.
import assert from "node:assert/strict";
import { openPort } from "../lib/open.ts";
import { buildUdpFrame } from "../lib/tools/packet.ts";
import { tempRunDir } from "./helpers/procs.ts";
import { portOf, type RunningTool, startTool, summary, until } from "./helpers/tools.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PCAP_LIB = `${ROOT}build/libvale-pcap.so`;

/** The command lines of vale(4)'s EXAMPLES section, unescaped, in order. */
function manExamples(): string[] {
  const page = Deno.readTextFileSync(`${ROOT}docs/man/vale.4`);
  const section = page.slice(page.indexOf("\n.SH EXAMPLES"), page.indexOf("\n.SH SEE ALSO"));
  const lines: string[] = [];
  let inBlock = false;
  for (const l of section.split("\n")) {
    if (l === ".nf") inBlock = true;
    else if (l === ".fi") inBlock = false;
    else if (inBlock) lines.push(l.replaceAll("\\-", "-"));
  }
  return lines;
}

/** Splits a command line as sh does for these examples: words, '…' quoting, a trailing '&'. */
function words(line: string): { argv: string[]; background: boolean } {
  const argv: string[] = [];
  const re = /'([^']*)'|(\S+)/g;
  for (const m of line.matchAll(re)) argv.push(m[1] ?? m[2]);
  const background = argv.at(-1) === "&";
  if (background) argv.pop();
  return { argv, background };
}

/** Starts an example command line: bin/TOOL for vale's tools, tcpdump through the interposer. */
function start(line: string, runDir: string): RunningTool {
  const { argv } = words(line);
  if (argv[0] === "tcpdump") return startTcpdump(argv.slice(1), runDir);
  return startTool(argv[0], argv.slice(1), runDir);
}

/** Runs a command line that ends by itself. */
async function run(line: string, runDir: string) {
  const r = await start(line, runDir).within(30000);
  return r;
}

/** tcpdump with vale's libpcap interposer preloaded (as its wrapper does). */
function startTcpdump(args: string[], runDir: string): RunningTool {
  // RunningTool's plumbing, for a program that is not in bin/
  const proc = new Deno.Command("tcpdump", {
    args,
    env: { VALE_RUN_DIR: runDir, LD_PRELOAD: PCAP_LIB },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "", errs = "";
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    const dec = new TextDecoder();
    for await (const c of s) add(dec.decode(c, { stream: true }));
  };
  const p1 = pump(proc.stdout, (t) => out += t), p2 = pump(proc.stderr, (t) => errs += t);
  const done = (async () => {
    const st = await proc.status;
    await Promise.all([p1, p2]);
    return { code: st.code, signal: st.signal, stdout: out, stderr: errs };
  })();
  const waitFor = async (re: RegExp, timeoutMs = 15000) => {
    await until(() => re.test(out + errs), timeoutMs, `tcpdump: ${re}\n${out}${errs}`);
    return (out + errs).match(re)!;
  };
  return {
    proc,
    stdout: () => out,
    stderr: () => errs,
    waitFor,
    done,
    async within(timeoutMs = 20000) {
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      try {
        const r = await done;
        return { code: r.code, stdout: r.stdout, stderr: r.stderr };
      } finally {
        clearTimeout(timer);
      }
    },
    signal(sig: Deno.Signal = "SIGINT") {
      try {
        proc.kill(sig);
      } catch { /* gone */ }
    },
  };
}

/** Stops a background example the way a user does (Ctrl-C), and waits for it. */
async function stop(t: RunningTool) {
  t.signal("SIGINT");
  return await t.within(20000);
}

/** The commands each scenario runs, as they appear on the page. */
const SCENARIOS = {
  tcpdump: ["tcpdump -ni vale-a:1 &", "pkt-gen -i vale-a:0 -f tx &"],
  projectPage: ["pkt-gen -i vale-foo", "pkt-gen -i vale-bar -f tx"],
  valeCtl: [
    "vale-ctl -n vi0",
    "vale-ctl -a vale0:vi0",
    "vale-ctl -a vale1:vi0",
    "vale-ctl -l",
    "vale-ctl -l vale1:vi0",
    "vale-ctl -g vale0:vi0",
    "vale-ctl -d vale1:vi0",
    "vale-ctl --lookup vale0:portmap",
    "vale-ctl --lookup-config 'vale0:map 0 1'",
    "vale-ctl --batch vale0:64",
  ],
};

Deno.test("vale(4) examples: the page and this test list the same commands", () => {
  assert.deepEqual(manExamples(), Object.values(SCENARIOS).flat());
});

Deno.test({
  name: "vale(4): tcpdump -ni vale-a:1 & pkt-gen -i vale-a:0 -f tx &",
  ignore: (() => {
    try {
      Deno.statSync(PCAP_LIB);
      return false;
    } catch {
      console.log(`skipped: ${PCAP_LIB} is not built (vale's libpcap interposer)`);
      return true;
    }
  })(),
  async fn() {
    await using run = await tempRunDir();
    const [dumpLine, genLine] = SCENARIOS.tcpdump;
    const dump = start(dumpLine, run.dir);
    let gen: RunningTool | undefined;
    try {
      await dump.waitFor(/listening on vale-a:1/);
      gen = start(genLine, run.dir);
      // pkt-gen's default frame: 10.0.0.1:1234 -> 10.1.0.1:1234, UDP, 18 bytes of payload
      await dump.waitFor(/(IP 10\.0\.0\.1\.1234 > 10\.1\.0\.1\.1234: UDP, length 18\n.*){10}/s);
      const g = await stop(gen);
      gen = undefined;
      const sent = summary(g.stdout)!.pkts;
      const d = await stop(dump);
      const shown = d.stdout.split("\n").filter((l) => l !== "");
      for (const l of shown) {
        assert.match(
          l,
          /^\d\d:\d\d:\d\d\.\d{6} IP 10\.0\.0\.1\.1234 > 10\.1\.0\.1\.1234: UDP, length 18$/,
        );
      }
      const captured = +d.stderr.match(/^(\d+) packets? captured$/m)![1];
      assert.equal(captured, shown.length);
      assert.ok(captured >= 10 && captured <= sent, `${captured} of ${sent}`);
    } finally {
      if (gen) await stop(gen).catch(() => {});
      await stop(dump).catch(() => {});
    }
  },
});

Deno.test("vale(4): pkt-gen -i vale-a:0 -f tx & (the sender alone: a port of switch vale-a)", async () => {
  await using run = await tempRunDir();
  const gen = start(SCENARIOS.tcpdump[1], run.dir);
  try {
    await gen.waitFor(/pps/);
    assert.equal(
      (await run1("vale-ctl -l", run.dir)).stdout,
      "vale-a:0 bridge_idx 0 port_idx 0\n",
    );
  } finally {
    const g = await stop(gen);
    assert.equal(g.code, 0, g.stderr);
    assert.ok(summary(g.stdout)!.pkts > 0, g.stdout);
  }
});

async function run1(line: string, dir: string) {
  const r = await run(line, dir);
  assert.equal(r.code, 0, `${line}: ${r.stderr}`);
  return r;
}

Deno.test("VALE project page: pkt-gen -i vale-foo, pkt-gen -i vale-bar -f tx", async () => {
  await using run = await tempRunDir();
  const [rxLine, txLine] = SCENARIOS.projectPage;
  const rx = start(rxLine, run.dir);
  let tx: RunningTool | undefined;
  try {
    await rx.waitFor(/reading from/);
    tx = start(txLine, run.dir);
    // two ports of one switch, "vale"
    await until(() => (portOf(run.dir, "vale", "vale-foo")?.counters.rx_packets ?? 0) > 10000);
    assert.equal(
      (await run1("vale-ctl -l", run.dir)).stdout,
      "vale:vale-foo bridge_idx 0 port_idx 0\nvale:vale-bar bridge_idx 0 port_idx 1\n",
    );
    const t = await stop(tx);
    tx = undefined;
    assert.equal(t.code, 0, t.stderr);
    const sent = summary(t.stdout)!;
    assert.equal(sent.verb, "Sent");
    // every frame sent (broadcast) reached vale-foo's ring or was dropped there, counted
    const foo = portOf(run.dir, "vale", "vale-foo")!.counters;
    assert.equal(foo.rx_packets + foo.drops.ring_full, sent.pkts);
    const r = await stop(rx);
    assert.equal(r.code, 0, r.stderr);
    const got = summary(r.stdout)!;
    assert.equal(got.verb, "Received");
    assert.ok(got.pkts > 10000 && got.pkts <= foo.rx_packets, `${got.pkts} of ${foo.rx_packets}`);
    assert.equal(got.size, 60);
  } finally {
    if (tx) await stop(tx).catch(() => {});
    await stop(rx).catch(() => {});
  }
});

Deno.test("vale(4): vale-ctl examples (persistent port on two switches, mSwitch tutorial)", async () => {
  await using run = await tempRunDir();
  const [create, attach0, attach1, list, list1, info, detach1, lookup, config, batch] =
    SCENARIOS.valeCtl;
  const ok = async (line: string, stdout = "") => {
    const r = await run1(line, run.dir);
    assert.equal(r.stdout, stdout, line);
    assert.equal(r.stderr, "", line);
  };
  await ok(create);
  await ok(attach0);
  await ok(attach1);
  await ok(list, "vale0:vi0 bridge_idx 0 port_idx 0\nvale1:vi0 bridge_idx 1 port_idx 0\n");
  await ok(list1, "bridge_idx: 1\nport_idx:   0\n");
  const g = await run1(info, run.dir);
  assert.match(
    g.stdout,
    /^memsize: {4}\d+\ntx_slots: {3}1024\nrx_slots: {3}1024\ntx_rings: {3}1\nrx_rings {4}1\nmem_id: {5}\d+\n$/,
  );
  await ok(detach1);
  await ok(list, "vale0:vi0 bridge_idx 0 port_idx 0\n");

  // the tutorial: vi0 is port 0 of vale0; b (1) and c (2) join; portmap sends 0 -> 1 only
  using vi0 = openPort("vale0:vi0", { runDir: run.dir });
  using b = openPort("vale0:b", { runDir: run.dir });
  using c = openPort("vale0:c", { runDir: run.dir });
  assert.deepEqual([vi0.index, b.index, c.index], [0, 1, 2]);
  await ok(lookup);
  await ok(config, "map 0 -> 1\n");
  await ok(batch);
  const info0 = JSON.parse((await run1("vale-ctl -l vale0 --json", run.dir)).stdout);
  assert.deepEqual([info0.lookup, info0.batch], ["portmap", 64]);
  for (let i = 0; i < 100; i++) vi0.send(buildUdpFrame({ srcMac: "02:00:00:00:00:01" }));
  vi0.txsync();
  c.send(buildUdpFrame({ srcMac: "02:00:00:00:00:03" })); // c is not mapped: dropped, counted
  c.txsync();
  assert.deepEqual([b.tryReceive().length, c.tryReceive().length, vi0.tryReceive().length], [
    100,
    0,
    0,
  ]);
  assert.equal(portOf(run.dir, "vale0", "c")!.counters.drops.lookup, 1);
});
