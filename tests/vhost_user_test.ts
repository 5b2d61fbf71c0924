// vhost-user ports (c-src/vhost/, io/vhost.c, `vale-ctl -a valeX:vhost:PATH`)
// with real front-ends: DPDK's virtio-user in dpdk-testpmd (no hugepages)
// sending, receiving and bouncing frames through vale0 against pkt-gen on
// ordinary switch ports, with exact counts on both sides; the front-end
// killed and started again (the port goes down, counts its drops, comes
// back); client mode (testpmd listens, vale connects and reconnects); and a
// misbehaving front-end of our own (tests/hostile/vhost_evil.c) sending bad
// descriptors, bad indices and garbage messages while the switch keeps
// forwarding between its other ports.
//
// Every case uses a private VALE_RUN_DIR and socket directory, testpmd file
// prefixes vhu<pid>x<n>, and removes all of it (and detaches) in `finally`.
// Without dpdk-testpmd (scripts/install-deps.sh installs dpdk-dev) the cases
// are listed as ignored with the reason.

import assert from "node:assert/strict";
import { listAttachments } from "../lib/attach/attach.ts";
import type { KernelPort } from "../lib/backends/kernel_port.ts";
import { openPort } from "../lib/open.ts";
import { portOf, type RunningTool, runTool, startTool, summary, until } from "./helpers/tools.ts";
import { haveTestpmd, Testpmd } from "./helpers/testpmd.ts";
import { tempRunDir } from "./helpers/procs.ts";
import { buildProg } from "./helpers/cprog.ts";
import { nsPingRun } from "./helpers/nslab.ts";
import { bootGuest, describe, guestAvailable, vhostUserNic } from "./helpers/guest.ts";

const SW = "vale0";
const skip = !haveTestpmd() ? "needs dpdk-testpmd (scripts/install-deps.sh: dpdk-dev)" : "";

function vtest(name: string, fn: () => Promise<void>, extraSkip = "") {
  const why = skip || extraSkip;
  if (why) {
    Deno.test({ name: `vhost_user: ${name} (skipped: ${why})`, ignore: true, fn() {} });
  } else {
    Deno.test({ name: `vhost_user: ${name}`, sanitizeResources: false, sanitizeOps: false, fn });
  }
}

/** A switch with a vhost-user port attached by `vale-ctl -a`, and its cleanup. */
async function setup(kind: "vhost" | "vhost-client" = "vhost") {
  const rd = await tempRunDir();
  const sockDir = await Deno.makeTempDir({ prefix: "vhu-" });
  const sock = `${sockDir}/vm.sock`;
  const port = "vm.sock";
  const a = await runTool("vale-ctl", ["-a", `${SW}:${kind}:${sock}`], rd.dir);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  assert.match(a.stdout, new RegExp(`${SW}:vm.sock: .*vm.sock attached via vhost-user`));
  const pmds: Testpmd[] = [];
  const tools: RunningTool[] = [];
  return {
    rd: rd.dir,
    sock,
    port,
    pmds,
    tools,
    /** The vhost port's switch counters. */
    vm: () => portOf(rd.dir, SW, port)!,
    /** The attachment as the forwarder last reported it. */
    att: () => listAttachments(SW, { runDir: rd.dir }).find((x) => x.port === port)!,
    async cleanup() {
      for (const t of tools) t.signal("SIGKILL");
      for (const p of pmds) {
        p.kill();
        await p.exited.catch(() => {});
        p.removeRuntimeDir();
      }
      await runTool("vale-ctl", ["-d", `${SW}:${port}`], rd.dir).catch(() => {});
      await rd[Symbol.asyncDispose]();
      await Deno.remove(sockDir, { recursive: true }).catch(() => {});
    },
  };
}
type Env = Awaited<ReturnType<typeof setup>>;

/** Both queues of the front-end running (the port's info text says so). */
async function frontEndUp(e: Env, ms = 30000): Promise<void> {
  await until(
    () => /connected.*2\/2 queues/.test(e.vm()?.info ?? ""),
    ms,
    "the front-end's queues",
  );
}

async function startPmd(e: Env, mode: string, opts: { server?: boolean; txpkts?: number } = {}) {
  const p = new Testpmd(e.sock, mode, opts);
  e.pmds.push(p);
  await p.ready();
  return p;
}

/** pkt-gen ping through a testpmd in io mode: `n` round trips of `size` bytes. */
async function ping(e: Env, port: string, n: number, size: number): Promise<void> {
  const r = await runTool(
    "pkt-gen",
    ["-i", `${SW}:${port}`, "-f", "ping", "-n", String(n), "-l", String(size)],
    e.rd,
    30000,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr + r.stdout, new RegExp(`RTT over ${n} packets`));
}

vtest("testpmd txonly -> vale -> pkt-gen rx: exact counts", async () => {
  const e = await setup();
  try {
    const rx = startTool("pkt-gen", ["-i", `${SW}:rx`, "-f", "rx"], e.rd);
    e.tools.push(rx);
    await rx.waitFor(/Ready/);
    const pmd = await startPmd(e, "txonly", { txpkts: 60 });
    await frontEndUp(e);
    await pmd.cmd("start");
    await until(() => (e.vm().counters.tx_packets ?? 0) >= 200000, 20000, "200000 frames");
    await pmd.cmd("stop");
    await new Promise((r) => setTimeout(r, 500));
    const sent = (await pmd.stats()).txPackets;
    assert.ok(sent >= 200000);
    // every frame testpmd handed to its TX ring crossed into the switch...
    await until(() => e.vm().counters.tx_packets === sent, 5000, "the switch to count them");
    // ...and reached pkt-gen's port or was counted as a drop there
    const rxp = () => portOf(e.rd, SW, "rx")!;
    await until(
      () => rxp().counters.rx_packets + rxp().counters.drops.ring_full === sent,
      5000,
      "delivered + dropped = sent",
    );
    assert.equal(e.vm().counters.tx_bytes, sent * 60);
    // one copy: the switch read every frame straight from testpmd's memory into pkt-gen's ring
    // (none went through the vhost port's own TX ring first)
    await until(() => e.att().vhost?.counters.tx_direct === sent, 5000, "tx_direct = sent");
    assert.equal(e.att().vhost!.counters.tx_copied, 0);
    const l = await runTool("vale-ctl", ["-l", "-v", `${SW}:${e.port}`], e.rd);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, new RegExp(` guest_tx_direct:${sent} guest_tx_copied:0\\b`));
    const got = rxp().counters.rx_packets;
    await new Promise((r) => setTimeout(r, 300));
    rx.signal("SIGINT");
    const out = await rx.within(10000);
    assert.equal(summary(out.stdout)?.pkts, got, out.stdout);
    await pmd.close();
  } finally {
    await e.cleanup();
  }
});

vtest("pkt-gen tx -> vale -> testpmd rxonly: exact counts, 60 and 1514 bytes", async () => {
  const e = await setup();
  try {
    const pmd = await startPmd(e, "rxonly");
    await pmd.cmd("start");
    await frontEndUp(e);
    let total = 0;
    for (const size of [60, 1514]) {
      const n = 20000;
      const r = await runTool(
        "pkt-gen",
        ["-i", `${SW}:tx`, "-f", "tx", "-n", String(n), "-l", String(size), "-R", "50000"],
        e.rd,
      );
      assert.equal(r.code, 0, r.stderr);
      total += n;
      // every frame reached the vhost port's ring or was counted as a drop there,
      // and every frame in its ring went into the guest's buffers
      await until(
        () => e.vm().counters.rx_packets + e.vm().counters.drops.ring_full === total,
        10000,
        "delivered + dropped = sent",
      );
      const inPort = e.vm().counters.rx_packets;
      await until(async () => (await pmd.stats()).rxPackets === inPort, 10000, "testpmd's count");
      assert.ok(inPort > 0);
    }
    await pmd.close();
  } finally {
    await e.cleanup();
  }
});

vtest("testpmd io bounces pkt-gen pings (60 and 1514 bytes)", async () => {
  const e = await setup();
  try {
    const pmd = await startPmd(e, "io");
    await pmd.cmd("start");
    await frontEndUp(e);
    await ping(e, "p1", 500, 60);
    await ping(e, "p2", 200, 1514);
    const s = await pmd.stats();
    assert.equal(s.rxPackets, 700);
    assert.equal(s.txPackets, 700);
    await pmd.close();
  } finally {
    await e.cleanup();
  }
});

vtest("front-end killed: the port goes down, counts drops, comes back with a new one", async () => {
  const e = await setup();
  try {
    let pmd = await startPmd(e, "io");
    await pmd.cmd("start");
    await frontEndUp(e);
    await ping(e, "p1", 100, 60);
    const pid = e.att().pid;
    pmd.kill();
    await pmd.exited;
    await until(() => /waiting for a front-end/.test(e.vm()?.info ?? ""), 10000, "port down");
    await until(() => e.att().status === "down", 10000, "attachment down");
    // frames to the port while nobody is there: dropped and counted
    const before = e.att().counters?.dropped ?? 0;
    const r = await runTool(
      "pkt-gen",
      ["-i", `${SW}:tx`, "-f", "tx", "-n", "1000", "-R", "20000"],
      e.rd,
    );
    assert.equal(r.code, 0, r.stderr);
    await until(() => (e.att().counters?.dropped ?? 0) - before === 1000, 10000, "1000 drops");
    // a new front-end: the same forwarder serves it
    pmd = await startPmd(e, "io");
    await pmd.cmd("start");
    await frontEndUp(e);
    await ping(e, "p2", 100, 60);
    assert.equal(e.att().pid, pid);
    await until(() => e.att().vhost?.counters.connects === 2, 5000, "2 connects reported");
    assert.equal(e.att().vhost?.counters.bad_msgs, 0);
    await pmd.close();
  } finally {
    await e.cleanup();
  }
});

vtest("client mode: vale connects to a listening front-end and reconnects", async () => {
  const e = await setup("vhost-client");
  try {
    for (let round = 0; round < 2; round++) {
      const pmd = new Testpmd(e.sock, "io", { server: true });
      e.pmds.push(pmd);
      await pmd.ready();
      await pmd.cmd("start");
      await frontEndUp(e);
      assert.match(e.vm().info, /vhost-user client: connected/);
      await ping(e, `p${round}`, 100, 60);
      await until(
        () => e.att().vhost?.counters.connects === round + 1,
        5000,
        `${round + 1} connects reported`,
      );
      pmd.kill();
      await pmd.exited;
      await until(() => /client: connecting/.test(e.vm()?.info ?? ""), 10000, "port down");
      // a killed server leaves its socket file (QEMU's server=on removes a stale one itself)
      Deno.removeSync(e.sock);
    }
  } finally {
    await e.cleanup();
  }
});

vtest("a misbehaving front-end is refused and counted; the switch keeps forwarding", async () => {
  const e = await setup();
  const evil = await buildProg("vhost_evil");
  try {
    const pid = e.att().pid;
    const obs = startTool("pkt-gen", ["-i", `${SW}:obs`, "-f", "rx"], e.rd);
    e.tools.push(obs);
    await obs.waitFor(/Ready/);
    // garbage: framing errors end their connections, bad values are refused (ack 1)
    const g = await new Deno.Command(evil, { args: [e.sock, "garbage"], stdout: "piped" }).output();
    const gout = new TextDecoder().decode(g.stdout);
    assert.equal(g.code, 0, gout);
    for (
      const line of [
        "badversion -1",
        "hugesize -1",
        "noise -1",
        "unknown 1",
        "badfeatures 1",
        "vringnum3 1",
        "queue7 1",
        "memtable2regions1fd 1",
        "memtablepastfile 1",
        "vringnum256 0",
        "vringaddroutside 1",
        "stillserved 1",
      ]
    ) assert.ok(gout.includes(line + "\n"), `${line} in:\n${gout}`);
    await until(() => (e.att().vhost?.counters.bad_msgs ?? 0) >= 10, 5000, "the refusals reported");
    const c1 = e.att().vhost!.counters;
    assert.equal(c1.bad_msgs, 10); // badversion, hugesize, midmessage, noise + 6 refused values
    assert.equal(c1.unknown_msgs, 1);

    // bad descriptors and indices, with good frames between them
    const d = new Deno.Command(evil, { args: [e.sock, "desc"], stdin: "piped", stdout: "piped" })
      .spawn();
    const w = d.stdin.getWriter();
    let dout = "";
    const reader = (async () => {
      for await (const c of d.stdout) dout += new TextDecoder().decode(c);
    })();
    await until(() => dout.includes("rx posted"), 15000, "the TX part");
    assert.match(dout, /^tx used 7$/m);
    // the two good frames crossed the switch
    await until(() => portOf(e.rd, SW, "obs")?.counters.rx_packets === 2, 5000, "2 good frames");
    assert.equal(e.vm().counters.tx_packets, 2);
    // a frame to the evil guest: its bad RX chain is returned with length 0, the good one used
    const t = await runTool("pkt-gen", ["-i", `${SW}:tx`, "-f", "tx", "-n", "1"], e.rd);
    assert.equal(t.code, 0, t.stderr);
    await until(() => dout.includes("broken"), 15000, "the RX part");
    assert.match(dout, /^rx len 72 id 1 bad len 0 num_buffers 1$/m);
    await until(() => (e.att().vhost?.counters.bad_index ?? 0) === 1, 5000, "bad index counted");
    const c2 = e.att().vhost!.counters;
    assert.equal(c2.bad_desc, 7); // 6 TX chains (one with a head out of range) + 1 RX
    await until(() => e.att().status === "down", 5000, "the port down (its queue stopped)");
    assert.match(e.att().vhost!.last_error, /1000 ahead/);

    // meanwhile the other ports forward exactly
    const rx = startTool("pkt-gen", ["-i", `${SW}:b`, "-f", "rx", "-n", "5000"], e.rd);
    e.tools.push(rx);
    await rx.waitFor(/Ready/);
    const a = await runTool(
      "pkt-gen",
      ["-i", `${SW}:a`, "-f", "tx", "-n", "5000", "-R", "50000"],
      e.rd,
    );
    assert.equal(a.code, 0, a.stderr);
    const r = await rx.within(15000);
    assert.equal(summary(r.stdout)?.pkts, 5000);
    await w.close();
    await d.status;
    await reader;

    // a front-end that shrinks its memory under us: the fault is caught, it is disconnected
    const sh = await new Deno.Command(evil, { args: [e.sock, "shrink"], stdout: "piped" }).output();
    assert.equal(new TextDecoder().decode(sh.stdout), "tx used 1\ndisconnected\n");
    await until(() => e.att().vhost?.counters.mem_faults === 1, 5000, "the fault counted");

    // a front-end rewriting its TX descriptors (outside memory, huge lengths) and frames while
    // the switch reads them in place: each chain is taken as it was read, once; a frame the
    // switch forwards has the length it had then, and nothing outside the memory is read
    const c0 = e.att().vhost!.counters, t0 = e.vm().counters.tx_packets;
    const o0 = portOf(e.rd, SW, "obs")!.counters;
    const rw = await new Deno.Command(evil, { args: [e.sock, "rewrite"], stdout: "piped" })
      .output();
    assert.equal(new TextDecoder().decode(rw.stdout), "tx used 20000\n");
    const fwd = () => e.vm().counters.tx_packets - t0;
    const refused = () => (e.att().vhost?.counters.bad_desc ?? 0) - c0.bad_desc;
    await until(() => fwd() + refused() === 20000, 5000, "every chain forwarded or refused");
    const o1 = portOf(e.rd, SW, "obs")!.counters;
    console.log(`    rewrite: ${fwd()} frames forwarded, ${refused()} chains refused`);
    assert.ok(fwd() > 0 && o1.rx_packets > o0.rx_packets);
    assert.equal(o1.rx_bytes - o0.rx_bytes, 60 * (o1.rx_packets - o0.rx_packets));
    // the attachment's counters come with the worker's state report (every 500 ms), the
    // port's from the switch at once: wait for the report to catch up, then compare exactly
    const direct = () => e.att().vhost!.counters.tx_direct - c0.tx_direct;
    await until(() => direct() === fwd(), 5000, `tx_direct ${direct()} = forwarded ${fwd()}`);

    // the forwarder never crashed nor restarted, and a well-behaved front-end works next
    assert.equal(e.att().pid, pid);
    assert.equal(e.att().restarts, 0);
    const pmd = await startPmd(e, "io");
    await pmd.cmd("start");
    await frontEndUp(e);
    await ping(e, "p1", 100, 60);
    await pmd.close();
  } finally {
    await e.cleanup();
  }
});

vtest(
  "openPort('vhost:PATH') in a process: testpmd io echoes what the application sends",
  async () => {
    const rd = await tempRunDir();
    const sockDir = await Deno.makeTempDir({ prefix: "vhu-" });
    const sock = `${sockDir}/app.sock`;
    let port: KernelPort | undefined;
    let pmd: Testpmd | undefined;
    try {
      port = openPort(`vhost:${sock}`, { runDir: rd.dir }) as KernelPort;
      assert.equal(port.vhostStatus().connected, false);
      pmd = new Testpmd(sock, "io");
      await pmd.ready();
      await pmd.cmd("start");
      await until(() => port!.vhostStatus().ready, 30000, "the front-end's queues");
      // no offloads for in-process ports: plain frames both ways
      assert.equal(port.vhostStatus().port_vnet_hdr, 0);
      const frame = new Uint8Array(60);
      frame.fill(0xff, 0, 6);
      frame.set([0x02, 0, 0, 0, 0, 7], 6);
      frame.set([0x88, 0xb5], 12);
      let sent = 0, got = 0;
      const end = Date.now() + 20000;
      while (sent < 2000 && Date.now() < end) {
        const batch = [];
        for (let i = 0; i < 100; i++) {
          const f = frame.slice();
          new DataView(f.buffer).setUint32(14, sent + i);
          batch.push(f);
        }
        sent += port.sendBatch(batch);
        for (const f of port.tryReceive()) {
          assert.equal(f.length, 60);
          got++;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      // testpmd got every frame (the pipe and the guest's ring hold them back, nothing is
      // dropped on our side); what it could put in its TX ring comes back, every one
      await until(async () => (await pmd!.stats()).rxPackets === sent, 10000, "testpmd's count");
      const s = await pmd.stats();
      console.log(`    sent ${sent}, testpmd echoed ${s.txPackets}`);
      await until(() => (got += port!.tryReceive().length) >= s.txPackets, 10000, "the echoes");
      assert.equal(got, s.txPackets);
      assert.ok(got > 0);
      await pmd.close();
    } finally {
      pmd?.kill();
      await pmd?.exited.catch(() => {});
      pmd?.removeRuntimeDir();
      port?.close();
      await rd[Symbol.asyncDispose]();
      await Deno.remove(sockDir, { recursive: true }).catch(() => {});
    }
  },
);

vtest("under ASan/UBSan: the back-end against the misbehaving front-end", async () => {
  const rd = await tempRunDir();
  const sockDir = await Deno.makeTempDir({ prefix: "vhu-" });
  const sock = `${sockDir}/san.sock`;
  const SAN_ENV = {
    VALE_RUN_DIR: rd.dir,
    ASAN_OPTIONS: "halt_on_error=1:abort_on_error=0:exitcode=99:detect_leaks=1",
    UBSAN_OPTIONS: "halt_on_error=1:print_stacktrace=1:exitcode=99",
  };
  const host = new Deno.Command(await buildProg("vhost_host", { sanitize: true }), {
    args: [sock],
    env: SAN_ENV,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let hout = "", herr = "";
  const pumps = Promise.all([
    (async () => {
      for await (const c of host.stdout) hout += dec.decode(c);
    })(),
    (async () => {
      for await (const c of host.stderr) herr += dec.decode(c);
    })(),
  ]);
  const hin = host.stdin.getWriter();
  try {
    await until(() => hout.includes("ready"), 20000, `the host ready: ${herr}`);
    const evil = await buildProg("vhost_evil");
    const g = await new Deno.Command(evil, { args: [sock, "garbage"], stdout: "piped" }).output();
    assert.equal(g.code, 0);
    const d = new Deno.Command(evil, { args: [sock, "desc"], stdin: "piped", stdout: "piped" })
      .spawn();
    let dout = "";
    const reader = (async () => {
      for await (const c of d.stdout) dout += dec.decode(c);
    })();
    await until(() => dout.includes("rx posted"), 20000, "the TX part");
    const t = await runTool("pkt-gen", ["-i", `${SW}:tx`, "-f", "tx", "-n", "1"], rd.dir);
    assert.equal(t.code, 0, t.stderr);
    await until(() => dout.includes("broken"), 20000, "the RX part");
    await d.stdin.close();
    await d.status;
    await reader;
    // descriptors and frames rewritten while the switch copies from them, into a real port
    const obs = startTool("pkt-gen", ["-i", `${SW}:obs`, "-f", "rx"], rd.dir);
    await obs.waitFor(/Ready/);
    const rw = await new Deno.Command(evil, { args: [sock, "rewrite"], stdout: "piped" }).output();
    assert.equal(dec.decode(rw.stdout), "tx used 20000\n");
    obs.signal("SIGINT");
    await obs.within(10000);
    const sh = await new Deno.Command(evil, { args: [sock, "shrink"], stdout: "piped" }).output();
    assert.equal(dec.decode(sh.stdout), "tx used 1\ndisconnected\n");
    await hin.close();
    const st = await host.status;
    await pumps;
    const all = hout + herr;
    assert.ok(!/(ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer)/.test(all), all);
    assert.equal(st.code, 0, all);
    const j = JSON.parse(hout.trim().split("\n").at(-1)!);
    // desc: 6 bad TX chains, 1 bad RX one, 2 good frames; rewrite: 20000 chains, good or
    // refused as they were read; shrink: 2 frames (the second read as zeros after the fault)
    assert.ok(j.counters.bad_desc >= 7);
    assert.equal(j.counters.tx_direct + j.counters.bad_desc, 2 + 7 + 20000 + 2);
    assert.equal(j.counters.tx_copied, 0);
    assert.equal(j.counters.bad_index, 1);
    assert.equal(j.counters.bad_msgs, 10);
    assert.equal(j.counters.mem_faults, 1);
  } finally {
    try {
      host.kill("SIGKILL");
    } catch { /* exited */ }
    await host.status.catch(() => {});
    await rd[Symbol.asyncDispose]();
    await Deno.remove(sockDir, { recursive: true }).catch(() => {});
  }
});

// The switch side of the single copy, without a front-end: a sender with a source table
// (what the vhost-user forwarder registers) whose shared TX slots are scribbled before every
// txsync, its frames ending at guard pages; plain and under ASan/UBSan.
Deno.test({
  name: "vhost_user: a source table: the flush reads only it (C, plain and ASan/UBSan)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    for (const sanitize of [false, true]) {
      await using rd = await tempRunDir();
      const bin = await buildProg("srctab_check", { sanitize });
      const r = await new Deno.Command(bin, {
        env: {
          VALE_RUN_DIR: rd.dir,
          ASAN_OPTIONS: "halt_on_error=1:abort_on_error=0:exitcode=99:detect_leaks=1",
          UBSAN_OPTIONS: "halt_on_error=1:print_stacktrace=1:exitcode=99",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      const all = dec.decode(r.stdout) + dec.decode(r.stderr);
      assert.ok(!/(ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer)/.test(all), all);
      assert.equal(r.code, 0, all);
      assert.equal(dec.decode(r.stdout), "ok 1280 frames\n");
    }
  },
});

// ---------------------------------------------------------------- QEMU guests

const isRoot = Deno.uid() === 0;
const guestSkip = guestAvailable() ?? (isRoot ? "" : "needs root (a namespace and a veth)");
/** A guest's whole life: TCG guests on two busy cores have taken 30 s to boot. */
const GUEST_MS = 150_000;

async function ipCmd(...args: string[]): Promise<void> {
  const r = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

/** A namespace on a veth whose root end is attached to vale0 (10.78.0.1). */
async function namespaceOn(e: Env): Promise<{ ns: string; close(): Promise<void> }> {
  const tag = `vu${Deno.pid}`, ns = `${tag}n`, a = `${tag}a`, r = `${tag}r`;
  await ipCmd("netns", "add", ns);
  const close = async () => {
    await runTool("vale-ctl", ["-d", `${SW}:${r}`], e.rd).catch(() => {});
    await new Deno.Command("ip", { args: ["netns", "del", ns], stderr: "null" }).output();
    await new Deno.Command("ip", { args: ["link", "del", r], stderr: "null" }).output();
  };
  try {
    await ipCmd("link", "add", r, "type", "veth", "peer", "name", a);
    await ipCmd("link", "set", a, "netns", ns);
    await ipCmd("-n", ns, "addr", "add", "10.78.0.1/24", "dev", a);
    await ipCmd("-n", ns, "link", "set", a, "up");
    await ipCmd("-n", ns, "link", "set", "lo", "up");
    await ipCmd("link", "set", r, "up");
    const at = await runTool("vale-ctl", ["-a", `${SW}:${r}`], e.rd);
    assert.equal(at.code, 0, at.stderr);
  } catch (err) {
    await close();
    throw err;
  }
  return { ns, close };
}

/** ping from the namespace: true when `count` replies came back. */
async function nsPing(ns: string, dst: string, count: number): Promise<boolean> {
  const r = await nsPingRun(ns, dst, { count });
  return r.out.includes(` ${count} received`);
}

/** `seq 1 N` as busybox prints it. */
function seqBytes(n: number): Uint8Array<ArrayBuffer> {
  const parts: string[] = [];
  for (let i = 1; i <= n; i++) parts.push(`${i}\n`);
  return new TextEncoder().encode(parts.join(""));
}
async function sha256(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** A second vhost-user port on the same switch. */
async function attachAnother(e: Env, name: string): Promise<string> {
  const sock = e.sock.replace(/vm\.sock$/, name);
  const a = await runTool("vale-ctl", ["-a", `${SW}:vhost:${sock}`], e.rd);
  assert.equal(a.code, 0, a.stderr);
  return sock;
}

vtest(
  "two QEMU guests ping each other and move 10 MiB over TCP in TSO frames; on to a namespace",
  async () => {
    const e = await setup();
    let lab: { ns: string; close(): Promise<void> } | undefined;
    try {
      const sockB = await attachAnother(e, "vmb.sock");
      lab = await namespaceOn(e);
      const payload = seqBytes(1_500_000); // 10 888 904 bytes
      const want = `${payload.length} ${await sha256(payload)}`;
      const wait = (peer: string) => `
n=0
until ping -c 1 -W 1 ${peer} >/dev/null 2>&1; do
  n=$((n + 1)); [ $n -ge 90 ] && { echo "T unreachable"; exit 10; }
done
ping -c 3 -i 0.2 ${peer} | grep -q ' 0% packet loss' || exit 11
echo "T ping ok"`;
      await using ga = await bootGuest({
        name: "va",
        netdevs: vhostUserNic("n0", e.sock),
        ip: ["10.78.0.2/24"],
        timeoutMs: GUEST_MS,
        script: `${wait("10.78.0.3")}
# busybox nc ends a connection soon after EOF on its stdin: keep that open
mkfifo /tmp/in
nc -l -p 5001 </tmp/in >/tmp/rx &
ncpid=$!
exec 3>/tmp/in
wait $ncpid || exit 12
echo "T rx $(wc -c </tmp/rx) $(sha256sum </tmp/rx | cut -d' ' -f1)"
# on to the namespace: its veth port gets our TSO frames whole (with a header) or segmented
n=0
until nc 10.78.0.1 5002 </tmp/rx; do
  n=$((n + 1)); [ $n -ge 50 ] && { echo "T connect failed"; exit 13; }; sleep 0.2
done
echo "T tx done"
sleep 2 # the namespace may still ping us
`,
      });
      await using gb = await bootGuest({
        name: "vb",
        netdevs: vhostUserNic("n0", sockB),
        ip: ["10.78.0.3/24"],
        timeoutMs: GUEST_MS,
        files: { "/data.bin": payload },
        script: `${wait("10.78.0.2")}
n=0
until nc 10.78.0.2 5001 </data.bin; do
  n=$((n + 1)); [ $n -ge 50 ] && { echo "T connect failed"; exit 13; }; sleep 0.2
done
echo "T tx done"
sleep 2
`,
      });
      // the namespace's sink for guest a's copy
      const sink = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          lab.ns,
          Deno.execPath(),
          "eval",
          `const l = Deno.listen({ hostname: "10.78.0.1", port: 5002 });
           const c = await l.accept();
           const chunks = []; let n = 0; const buf = new Uint8Array(1 << 16);
           for (;;) { const k = await c.read(buf); if (k === null) break; chunks.push(buf.slice(0, k)); n += k; }
           const all = new Uint8Array(n); let o = 0; for (const x of chunks) { all.set(x, o); o += x.length; }
           const d = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
           console.log(n + " " + [...d].map((x) => x.toString(16).padStart(2, "0")).join(""));`,
        ],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(GUEST_MS),
      }).output();
      await Promise.all([ga.ready(GUEST_MS), gb.ready(GUEST_MS)]);
      await ga.waitFor(/^T ping ok/m, GUEST_MS);
      // offloads negotiated: the guests' ports carry their virtio-net headers
      await until(() => e.att().vhost?.port_vnet_hdr === 12, 5000, "guest a's header on its port");
      assert.match(e.vm().info, / tso/);
      assert.ok(await nsPing(lab.ns, "10.78.0.2", 3), "namespace -> guest a");
      assert.ok(await nsPing(lab.ns, "10.78.0.3", 3), "namespace -> guest b");
      const [ra, rb] = await Promise.all([ga.result(), gb.result()]);
      assert.equal(rb.status, 0, describe(rb, "vb"));
      assert.equal(ra.status, 0, describe(ra, "va"));
      assert.match(ra.script, new RegExp(`^T rx ${want}$`, "m"), `guest a got: ${ra.script}`);
      const sk = await sink;
      const dec = new TextDecoder();
      assert.equal(
        dec.decode(sk.stdout).trim(),
        want,
        `the namespace got: ${dec.decode(sk.stderr)}`,
      );
      // the veth's port: with a virtio-net header (the kernel's offloads kept) the super-frames
      // pass whole, without one the switch segments them
      const vp = portOf(e.rd, SW, `vu${Deno.pid}r`)!;
      const va = e.vm().counters, veth = vp.counters;
      console.log(
        `    guest a sent ${va.tx_packets} frames; the namespace's port (header ` +
          `${vp.vnet_hdr_len}) got ${veth.rx_packets}`,
      );
      // (a TCG guest's TSO frames are as large as its speed lets TCP make them: when they
      // averaged above an MTU frame, some were super-frames and the switch cut them)
      if (vp.vnet_hdr_len === 0 && va.tx_bytes / va.tx_packets > 1514 + 12) {
        assert.ok(veth.rx_packets > va.tx_packets, "the switch segmented guest a's frames");
      }
      const st = e.att().vhost!;
      assert.equal(st.counters.bad_desc, 0);
      assert.equal(st.counters.bad_msgs, 0);
      // both guests' frames, super-frames included, were read in guest memory by the switch
      // (one copy); none went through a port's TX ring first
      const vhb = () => listAttachments(SW, { runDir: e.rd }).find((x) => x.port === "vmb.sock")!;
      const fromB = () => portOf(e.rd, SW, "vmb.sock")!.counters.tx_packets;
      await until(
        () =>
          e.att().vhost?.counters.tx_direct === e.vm().counters.tx_packets &&
          vhb().vhost?.counters.tx_direct === fromB(),
        5000,
        "tx_direct = the ports' tx_packets",
      );
      console.log(
        `    read in place: guest a ${e.att().vhost!.counters.tx_direct} frames, ` +
          `guest b ${vhb().vhost!.counters.tx_direct}`,
      );
      assert.equal(e.att().vhost!.counters.tx_copied, 0);
      assert.equal(vhb().vhost!.counters.tx_copied, 0);
      // guest b's TCP left in super-frames (far fewer frames than 1448-byte segments)
      const vb = portOf(e.rd, SW, "vmb.sock")!.counters;
      console.log(`    guest b sent ${vb.tx_packets} frames, ${vb.tx_bytes} bytes`);
      // (an average above 1526 bytes, the largest frame without TSO with its 12-byte header,
      // needs super-frames; how large they are depends on the guests' timing: 1.6 to 40 KB)
      assert.ok(
        vb.tx_bytes / vb.tx_packets > 1514 + 12,
        `${vb.tx_bytes} bytes in ${vb.tx_packets} frames`,
      );
      console.log(`    boot to ready: ${ra.bootMs?.toFixed(0)} ms, ${rb.bootMs?.toFixed(0)} ms`);
    } finally {
      await lab?.close();
      await runTool("vale-ctl", ["-d", `${SW}:vmb.sock`], e.rd).catch(() => {});
      await e.cleanup();
    }
  },
  guestSkip,
);

/** QEMU killed under a ping flood and started again, twice; `client`: QEMU listens (server=on). */
async function qemuRestarts(kind: "vhost" | "vhost-client") {
  const e = await setup(kind);
  let lab: { ns: string; close(): Promise<void> } | undefined;
  try {
    lab = await namespaceOn(e);
    const pid = e.att().pid;
    let connects = 0;
    for (let round = 0; round < 2; round++) {
      await using g = await bootGuest({
        name: `vk${round}`,
        netdevs: vhostUserNic("n0", e.sock, { server: kind === "vhost-client" }),
        ip: ["10.78.0.2/24"],
        timeoutMs: GUEST_MS,
        script: "sleep 600",
      });
      await g.ready(GUEST_MS);
      await frontEndUp(e);
      // traffic flows: a ping flood in the background while QEMU is killed
      const flood = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          lab.ns,
          "ping",
          "-n",
          "-q",
          "-i",
          "0.01",
          "-w",
          "20",
          "10.78.0.2",
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await until(() => nsPing(lab!.ns, "10.78.0.2", 2), 60000, `guest ${round} answers`);
      await g.kill(0);
      await until(
        () => /waiting for a front-end|client: connecting/.test(e.vm()?.info ?? ""),
        10000,
        "port down",
      );
      await until(() => e.att().status === "down", 10000, "attachment down");
      try {
        flood.kill("SIGKILL");
      } catch { /* ended */ }
      await flood.status;
      // each QEMU was a new connection (a client may connect more than once while QEMU starts)
      const c = e.att().vhost?.counters.connects ?? 0;
      assert.ok(c > connects, `connections: ${c} after ${connects}`);
      connects = c;
    }
    assert.equal(e.att().pid, pid, "the same forwarder served both QEMUs");
  } finally {
    await lab?.close();
    await e.cleanup();
  }
}

vtest(
  "QEMU killed while a namespace pings its guest: the port goes down and comes back",
  () => qemuRestarts("vhost"),
  guestSkip,
);

vtest(
  "client mode with QEMU listening (server=on): killed and started again, vale reconnects",
  () => qemuRestarts("vhost-client"),
  guestSkip,
);
