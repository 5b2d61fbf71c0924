// Real VMs on a switch: tiny QEMU guests (tests/helpers/guest.ts: a Debian
// cloud kernel and busybox, TCG, no KVM) on TAPs whose kernel side is
// attached to vale0, and a network namespace on a veth attached to vale0.
// Ping both ways, TCP of 10+ MiB each way with the exact byte count and
// content, and two guests pinging each other through the switch. Then the
// helper itself (two NICs in order, exit status, files, modules, commands
// over the console, the time bound; QEMU's user network, no root), and the
// guest side of vhost-user against a back-end that is not ours (two guests
// joined by dpdk-testpmd's vhost ports).
//
// Every case makes its own namespace, veth, TAPs (named gt<pid>…) and a
// private VALE_RUN_DIR under /dev/shm, and removes all of it when it ends
// (`await using`), failed or not. Without root, QEMU, dpdk-testpmd or the
// guest image the cases are registered as ignored with the reason in their
// names. About 35 s on an idle machine (each guest boots in ~2.5 s).

import assert from "node:assert/strict";
import { capEff } from "./helpers/machine.ts";
import { until } from "./helpers/tools.ts";
import { attachInterface, detachInterface, listAttachments } from "../lib/attach/attach.ts";
import { switchInfo } from "../lib/switch/control.ts";
import {
  bootGuest,
  describe,
  guestAvailable,
  pingUntil,
  tapNic,
  userNic,
  vhostUserNic,
} from "./helpers/guest.ts";

const dec = new TextDecoder();
const TAG = `gt${Deno.pid}`;

const isRoot = ((capEff() >> 12n) & 1n) === 1n && ((capEff() >> 21n) & 1n) === 1n;
const skipReason = !isRoot
  ? "needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)"
  : guestAvailable();

function gtest(
  name: string,
  fn: () => Promise<void>,
  extraSkip: string | null = null,
  needsRoot = true,
) {
  const why = (needsRoot ? skipReason : guestAvailable()) ?? extraSkip;
  if (why) {
    Deno.test({ name: `guest: ${name} (skipped: ${why})`, ignore: true, fn() {} });
  } else {
    Deno.test({ name: `guest: ${name}`, sanitizeResources: false, sanitizeOps: false, fn });
  }
}

async function sh(cmd: string, args: string[], ms = 30000) {
  const r = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}
async function ip(...args: string[]): Promise<string> {
  const r = await sh("ip", args);
  if (!r.ok) throw new Error(`ip ${args.join(" ")}: ${r.err.trim()}`);
  return r.out;
}
/** A namespace on a veth (root end attached to vale0) and TAPs for guests. */
class Lab implements AsyncDisposable {
  readonly ns = `${TAG}n`;
  readonly a = `${TAG}a`; // in the namespace
  readonly r = `${TAG}r`; // root end, attached
  readonly taps: string[] = [];
  runDir = "";

  async setup(withNs: boolean): Promise<this> {
    this.runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-guest-" });
    if (!withNs) return this;
    await ip("netns", "add", this.ns);
    await sh("ip", ["netns", "exec", this.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    await ip("-n", this.ns, "link", "set", "lo", "up");
    await ip("link", "add", this.r, "type", "veth", "peer", "name", this.a);
    await ip("link", "set", this.a, "netns", this.ns);
    await ip("-n", this.ns, "addr", "add", "10.77.0.1/24", "dev", this.a);
    await ip("-n", this.ns, "link", "set", this.a, "up");
    await ip("link", "set", this.r, "up");
    await attachInterface(`vale0:${this.r}`, { runDir: this.runDir });
    return this;
  }

  /** A TAP for a guest (QEMU opens it by name). */
  async tap(): Promise<string> {
    const t = `${TAG}t${this.taps.length}`;
    await ip("tuntap", "add", t, "mode", "tap");
    this.taps.push(t);
    await ip("link", "set", t, "up");
    return t;
  }

  /** Attach a TAP's kernel side once QEMU holds it (carrier up). */
  async attachTap(t: string): Promise<void> {
    await until(
      async () => (await ip("link", "show", t)).includes("LOWER_UP"),
      60000,
      `QEMU opened ${t}`,
    );
    await attachInterface(`vale0:${t}`, { runDir: this.runDir });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.runDir) {
      for (const a of listAttachments(undefined, { runDir: this.runDir })) {
        await detachInterface(a.name, { runDir: this.runDir }).catch(() => {});
      }
    }
    await sh("ip", ["netns", "del", this.ns]);
    await sh("ip", ["link", "del", this.r]);
    for (const t of this.taps) await sh("ip", ["link", "del", t]);
    if (this.runDir) await Deno.remove(this.runDir, { recursive: true }).catch(() => {});
  }
}

/** `seq 1 N` as busybox prints it: the deterministic TCP payload. */
function seqBytes(n: number): Uint8Array<ArrayBuffer> {
  const parts: string[] = [];
  for (let i = 1; i <= n; i++) parts.push(`${i}\n`);
  return new TextEncoder().encode(parts.join(""));
}
async function sha256(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Deno inside the namespace, running `code`; resolves with its stdout. */
function nsDeno(ns: string, code: string, ms: number) {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "eval", code],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output().then((r) => ({
    ok: r.success,
    out: dec.decode(r.stdout),
    err: dec.decode(r.stderr),
  }));
}

/**
 * Bound of a guest's whole life. Generous: a guest boots in ~3 s on an idle
 * machine, but several TCG guests on two busy cores have taken 30 s.
 */
const GUEST_MS = 150_000;
const SEQ_N = 1_500_000; // `seq 1 1500000` is 10 888 904 bytes (> 10 MiB)

gtest(
  "a guest on a TAP and a namespace on a veth: ping both ways, 10 MiB TCP each way",
  async () => {
    await using lab = await new Lab().setup(true);
    const tap = await lab.tap();
    const payload = seqBytes(SEQ_N);
    const want = { n: payload.length, sha: await sha256(payload) };

    // the namespace's sink for the guest's transfer, listening before the guest boots
    const sink = nsDeno(
      lab.ns,
      `const l = Deno.listen({ hostname: "10.77.0.1", port: 5002 });
     console.log("listening");
     const c = await l.accept();
     const chunks = []; let n = 0;
     const buf = new Uint8Array(1 << 16);
     for (;;) { const k = await c.read(buf); if (k === null) break; chunks.push(buf.slice(0, k)); n += k; }
     const all = new Uint8Array(n); let o = 0; for (const x of chunks) { all.set(x, o); o += x.length; }
     const d = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
     console.log(JSON.stringify({ n, sha: [...d].map((x) => x.toString(16).padStart(2, "0")).join("") }));`,
      GUEST_MS,
    );
    await until(
      async () => (await sh("ip", ["netns", "exec", lab.ns, "ss", "-ltn"])).out.includes(":5002"),
      10000,
      "the namespace's sink listening",
    );

    await using g = await bootGuest({
      name: "g1",
      netdevs: tapNic("n0", tap),
      ip: ["10.77.0.2/24"],
      timeoutMs: GUEST_MS,
      script: `
ns=10.77.0.1
${pingUntil("$ns")}
ping -c 3 -i 0.2 $ns | grep -q ' 0% packet loss' || exit 11
echo "T ping ok"
echo "T listen $(cut -d' ' -f1 /proc/uptime)"
nc -l -p 5001 </dev/null >/tmp/rx || exit 12
echo "T got $(cut -d' ' -f1 /proc/uptime)"
echo "T rx $(wc -c </tmp/rx) $(sha256sum </tmp/rx | cut -d' ' -f1)"
# back to the namespace: the same bytes (generating them again under TCG is slow)
nc $ns 5002 </tmp/rx || exit 13
echo "T tx done $(cut -d' ' -f1 /proc/uptime)"
`,
    });
    await lab.attachTap(tap);
    const bootMs = await g.ready();
    await g.waitFor(/^T listen /m);

    // namespace -> guest: ping, then 10 MiB into the guest's nc
    const p = await sh("ip", [
      "netns",
      "exec",
      lab.ns,
      "ping",
      "-n",
      "-q",
      "-c",
      "3",
      "-i",
      "0.2",
      "-W",
      "2",
      "10.77.0.2",
    ]);
    assert.match(p.out, / 0% packet loss/, p.out + p.err);
    const src = await nsDeno(
      lab.ns,
      `let c;
     for (let i = 0; ; i++) {
       try { c = await Deno.connect({ hostname: "10.77.0.2", port: 5001 }); break; }
       catch (e) { if (i >= 100) throw e; await new Promise((r) => setTimeout(r, 100)); }
     }
     const seq = []; for (let i = 1; i <= ${SEQ_N}; i++) seq.push(i + "\\n");
     const b = new TextEncoder().encode(seq.join(""));
     for (let w = 0; w < b.length;) w += await c.write(b.subarray(w));
     c.close();`,
      GUEST_MS,
    );
    assert.ok(src.ok, src.err);
    const rx = (await g.waitFor(/^T rx (\d+) ([0-9a-f]{64})$/m))!;
    assert.equal(Number(rx[1]), want.n, "bytes the guest received");
    assert.equal(rx[2], want.sha, "content the guest received");

    // guest -> namespace
    const s = await sink;
    assert.ok(s.ok, s.err);
    const got = JSON.parse(s.out.trim().split("\n").at(-1)!);
    assert.deepEqual(got, want, "bytes and content the namespace received");

    const r = await g.result();
    assert.equal(r.status, 0, describe(r, "g1"));
    assert.match(r.script, /T tx done/);
    console.log(r.script.split("\n").filter((l) => l.startsWith("T ")).join("\n"));
    console.log(
      `    guest boot to ready: ${bootMs.toFixed(0)} ms; whole run ${r.totalMs.toFixed(0)} ms`,
    );
  },
);

gtest("two guests on the same switch ping each other", async () => {
  await using lab = await new Lab().setup(false);
  const t0 = await lab.tap(), t1 = await lab.tap();
  const script = (peer: string) => `
${pingUntil(peer)}
ping -c 3 -i 0.2 ${peer} | grep -q ' 0% packet loss' || exit 11
echo "T ping ok"
sleep 3 # the peer may still be pinging us
`;
  const macs = ["52:54:00:77:01:01", "52:54:00:77:01:02"];
  await using g0 = await bootGuest({
    name: "a",
    netdevs: tapNic("n0", t0, { mac: macs[0] }),
    ip: ["10.77.1.1/24"],
    script: script("10.77.1.2"),
    timeoutMs: GUEST_MS,
  });
  await using g1 = await bootGuest({
    name: "b",
    netdevs: tapNic("n0", t1, { mac: macs[1] }),
    ip: ["10.77.1.2/24"],
    script: script("10.77.1.1"),
    timeoutMs: GUEST_MS,
  });
  await Promise.all([lab.attachTap(t0), lab.attachTap(t1)]);
  const [r0, r1] = await Promise.all([g0.result(), g1.result()]);
  assert.equal(r0.status, 0, describe(r0, "a"));
  assert.equal(r1.status, 0, describe(r1, "b"));
  // the switch learned each guest's MAC on its TAP's port
  const info = switchInfo("vale0", { runDir: lab.runDir });
  const portOf = (mac: string) =>
    info.ports.find((x) => x.index === info.macs.find((m) => m.mac === mac)?.port)?.name;
  assert.equal(portOf(macs[0]), t0, JSON.stringify(info.macs));
  assert.equal(portOf(macs[1]), t1, JSON.stringify(info.macs));
  console.log(
    `    boot to ready: ${r0.bootMs?.toFixed(0)} ms and ${r1.bootMs?.toFixed(0)} ms (together)`,
  );
});

gtest(
  "the helper: two NICs in order, exit status, output, files, commands; overstayers killed",
  async () => {
    // QEMU's user-mode network behind each NIC: its gateway answers ping, no root needed
    const macs = ["52:54:00:77:03:01", "52:54:00:77:03:02"];
    await using ok = await bootGuest({
      name: "s",
      netdevs: [
        ...userNic("u0", "10.0.2.0/24", { mac: macs[0] }),
        ...userNic("u1", "10.0.3.0/24", { mac: macs[1] }),
      ],
      ip: ["10.0.2.15/24", "10.0.3.15/24"],
      mtu: [1400, 0],
      modules: ["8021q"],
      files: { "/data/hello.txt": "hello from the host\n" },
      script: `
cat /data/hello.txt
for d in eth0 eth1; do
  echo "nic $d $(cat /sys/class/net/$d/address) $(cat /sys/class/net/$d/mtu)" \
    "$(ip -4 addr show dev $d | grep -o 'inet [0-9./]*')"
done
ping -c 2 -W 3 10.0.2.2 >/dev/null && ping -c 2 -W 3 10.0.3.2 >/dev/null && echo "pinged both"
ip link add link eth0 name eth0.5 type vlan id 5 && cat /proc/net/vlan/eth0.5 | head -1
exit 7`,
      timeoutMs: GUEST_MS,
    });
    await using slow = await bootGuest({ name: "slow", script: "sleep 600", timeoutMs: 8000 });
    await using sh = await bootGuest({
      name: "i",
      shell: true,
      script: "echo 41 > /tmp/n",
      timeoutMs: GUEST_MS,
    });
    // commands from the host, one after the other, state kept between them
    const c1 = await sh.run('n=$(cat /tmp/n); echo $((n + 1)) > /tmp/n; echo "n is $((n + 1))"');
    assert.deepEqual(c1, { status: 0, output: "n is 42\n" });
    const c2 = await sh.run("cat /tmp/n\nfalse");
    assert.deepEqual(c2, { status: 1, output: "42\n" });
    const c3 = await sh.run("echo 'quotes \" and $dollars'; exit 5");
    assert.deepEqual(c3, { status: 5, output: 'quotes " and $dollars\n' });
    const c4 = await sh.run(
      "modprobe bridge && ip link add br0 type bridge && cat /sys/class/net/br0/bridge/stp_state",
    );
    assert.deepEqual(c4, { status: 0, output: "0\n" }, "a bridge (modprobe in the guest)");
    const ri = await sh.exit(3);
    assert.equal(ri.status, 3, describe(ri, "i"));
    assert.equal(ri.qemuCode, 0);
    const r = await ok.result();
    assert.equal(r.status, 7, describe(r, "s"));
    assert.match(r.script, /^hello from the host$/m);
    assert.match(r.script, new RegExp(`^nic eth0 ${macs[0]} 1400 inet 10.0.2.15/24$`, "m"));
    assert.match(r.script, new RegExp(`^nic eth1 ${macs[1]} 1500 inet 10.0.3.15/24$`, "m"));
    assert.match(r.script, /^pinged both$/m, describe(r, "s"));
    assert.match(r.script, /^eth0\.5 +VID: 5/m, "a VLAN link (8021q loaded at boot)");
    assert.equal(r.qemuCode, 0, "powered off");
    assert.equal(r.timedOut, false);
    const t = await slow.result();
    assert.equal(t.timedOut, true);
    assert.equal(t.status, null, "no exit status from a guest that was killed");
    assert.match(t.stderr, /terminating on signal 15/, "QEMU stopped by SIGTERM");
    console.log(`    boot to ready: ${r.bootMs?.toFixed(0)} ms (three guests booting together)`);
  },
  null,
  false,
);

function haveTestpmd(): boolean {
  try {
    return new Deno.Command("dpdk-testpmd", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().code !== 127;
  } catch {
    return false;
  }
}

// The guest side of vhost-user, checked against a vhost-user back-end that is
// not ours: dpdk-testpmd's two vhost PMD ports in io mode join two guests.
gtest(
  "vhost-user NICs: two guests joined by dpdk-testpmd's vhost ports ping each other",
  async () => {
    const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-guest-vu-" });
    const prefix = `${TAG}vu`;
    // niced: its forwarding core busy-polls, and the TCG guests need the CPU more
    const tp = new Deno.Command("nice", {
      args: [
        "-n",
        "19",
        "dpdk-testpmd",
        "-l",
        "0-1",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--file-prefix",
        prefix,
        "--vdev",
        `net_vhost0,iface=${dir}/s0`,
        "--vdev",
        `net_vhost1,iface=${dir}/s1`,
        "--",
        "--forward-mode=io",
        "--auto-start",
        "--total-num-mbufs=8192",
      ],
      stdin: "piped", // testpmd runs until its stdin ends
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(GUEST_MS + 30000),
    }).spawn();
    const tpOut = tp.output();
    let tpEnded: Deno.CommandOutput | null = null;
    tpOut.then((o) => tpEnded = o, () => {});
    try {
      await until(
        () => {
          if (tpEnded) {
            const o: Deno.CommandOutput = tpEnded;
            assert.fail(`testpmd ended: ${dec.decode(o.stdout)}${dec.decode(o.stderr)}`);
          }
          try {
            Deno.statSync(`${dir}/s1`);
            return true;
          } catch {
            return false;
          }
        },
        60000,
        "testpmd's vhost sockets",
      );
      const script = (peer: string) => `
${pingUntil(peer)}
ping -c 3 -i 0.2 ${peer} | grep -q ' 0% packet loss' || exit 11
sleep 3 # the peer may still be pinging us
`;
      await using g0 = await bootGuest({
        name: "va",
        netdevs: vhostUserNic("n0", `${dir}/s0`),
        ip: ["10.77.2.1/24"],
        script: script("10.77.2.2"),
        timeoutMs: GUEST_MS,
      });
      await using g1 = await bootGuest({
        name: "vb",
        netdevs: vhostUserNic("n0", `${dir}/s1`),
        ip: ["10.77.2.2/24"],
        script: script("10.77.2.1"),
        timeoutMs: GUEST_MS,
      });
      const [r0, r1] = await Promise.all([g0.result(), g1.result()]);
      assert.equal(r0.status, 0, describe(r0, "va"));
      assert.equal(r1.status, 0, describe(r1, "vb"));
      console.log(
        `    boot to ready: ${r0.bootMs?.toFixed(0)} ms and ${r1.bootMs?.toFixed(0)} ms ` +
          `(with testpmd polling a core)`,
      );
      await tp.stdin.close();
      const o = await tpOut;
      const text = dec.decode(o.stdout);
      const rx = [...text.matchAll(/Forward statistics for port (\d)[^]*?RX-packets: (\d+)/g)];
      assert.equal(rx.length, 2, text.slice(-2000));
      for (const m of rx) assert.ok(Number(m[2]) >= 4, `port ${m[1]} forwarded ${m[2]} frames`);
    } finally {
      try {
        tp.kill("SIGKILL");
      } catch { /* done */ }
      await tpOut.catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(`/var/run/dpdk/${prefix}`, { recursive: true }).catch(() => {});
    }
  },
  haveTestpmd() ? null : "needs dpdk-testpmd (Debian's dpdk)",
);
