// Tiny QEMU guests for tests: a Debian cloud kernel and a busybox initramfs
// (built by scripts/guest/prepare.ts into build/guest/), booted under TCG
// (no KVM needed) with the NICs a test gives, running one shell script and
// powering off. The serial console is the guest's stdout; init prints
// markers the helper parses:
//
//   VALE-GUEST <name> ready          NICs configured, the script starts
//   VALE-GUEST <name> exit <status>  the script's exit status
//
// Usage:
//
//   const why = guestAvailable();          // null, or why guests cannot run here
//   await using g = await bootGuest({
//     name: "g1",
//     netdevs: tapNic("n0", "tap0"),       // raw QEMU args
//     ip: ["10.0.0.2/24"],                 // eth0's address
//     script: "ping -c 3 10.0.0.1",
//   });
//   const bootMs = await g.ready();        // NICs configured (or g.waitFor(/regex/))
//   const r = await g.result();            // { status: 0, output, script, bootMs, ... }
//
// With `shell: true` the guest stays up after the script and runs commands
// the host sends on the serial console: `await g.run("ip addr")` gives
// { status, output }, `await g.exit(0)` ends it.
//
// The per-boot script travels in a second cpio archive appended to the base
// initramfs (the kernel unpacks concatenated archives), so the base is built
// once per package version.

import { type CpioEntry, cpioNewc } from "../../scripts/guest/cpio.ts";
import { type GuestImage, prepareGuest } from "../../scripts/guest/prepare.ts";

export type { GuestImage };

const QEMU = "qemu-system-x86_64";

export interface GuestOptions {
  /** Hostname and marker tag: letters, digits, `.`, `_`, `-` (at most 32). */
  name: string;
  /** Raw QEMU arguments for the NICs, e.g. tapNic(...) or vhostUserNic(...). */
  netdevs?: string[];
  /** Addresses of eth0, eth1, ... ("10.0.0.2/24"); "-" or missing leaves a NIC without one. */
  ip?: string[];
  /** MTUs of eth0, eth1, ... (missing: the driver's default). */
  mtu?: number[];
  /** Guest memory in MiB (default 256). */
  memMiB?: number;
  /**
   * Guest memory in a shared memfd (`memory-backend-memfd,share=on`), which
   * vhost-user needs. Default: on when a netdev is vhost-user.
   */
  sharedMemory?: boolean;
  /** The shell script the guest runs (busybox sh, in /tmp); its exit status is reported. */
  script?: string;
  /** More files for the guest (path → content), e.g. { "/data.bin": bytes }. */
  files?: Record<string, string | Uint8Array>;
  /** The guest's whole life, boot included (default 60000 ms): then QEMU is killed. */
  timeoutMs?: number;
  /**
   * Kernel modules to load at boot besides the NIC drivers, among
   * GuestImage.extraModules (8021q, bridge, veth, dummy, macvlan, tun,
   * sch_netem); scripts may also `modprobe` them.
   */
  modules?: string[];
  /** More kernel command-line words. */
  append?: string[];
  /** More QEMU arguments. */
  qemuArgs?: string[];
  /**
   * After the script, keep running and take commands from the host
   * (Guest.run, Guest.exit) over the serial console.
   */
  shell?: boolean;
}

export interface RunResult {
  status: number;
  /** What the command printed (and any kernel message in between). */
  output: string;
}

export interface GuestResult {
  /** The script's exit status; null when the guest never reported one (crash, timeout). */
  status: number | null;
  /** Everything the guest printed on its serial console (CR removed). */
  output: string;
  /** What was printed between the ready and exit markers (the script's output, mostly). */
  script: string;
  /** QEMU's stderr. */
  stderr: string;
  /** QEMU's exit code (null when it was killed by a signal). */
  qemuCode: number | null;
  /** Milliseconds from QEMU's start to the ready marker (null if never ready). */
  bootMs: number | null;
  /** Milliseconds from QEMU's start to its exit. */
  totalMs: number;
  timedOut: boolean;
}

export interface Guest extends AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  /** The serial output so far. */
  output(): string;
  /**
   * Resolves with the first match of `re` (no `g` flag) in the output so far
   * or to come; rejects when QEMU exits first or after `ms` (default: timeoutMs).
   */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Resolves when the NICs are configured (the ready marker), with the boot time in ms. */
  ready(ms?: number): Promise<number>;
  /** Waits for QEMU to end (the script powers it off, or the timeout kills it). */
  result(): Promise<GuestResult>;
  /**
   * (shell: true) Runs a shell script (at most 2 KiB; stdin /dev/null, cwd
   * /tmp) in the guest and resolves with its status and output. Commands run
   * one at a time; end one with `&` to leave it running in the background.
   * Rejects after `ms` (default 60 s) without an answer.
   */
  run(script: string, ms?: number): Promise<RunResult>;
  /** (shell: true) Ends the guest with `status` as its exit status; resolves with result(). */
  exit(status?: number): Promise<GuestResult>;
  /** SIGTERM, then SIGKILL after `graceMs`; waits for the exit. Idempotent. */
  kill(graceMs?: number): Promise<void>;
}

// ---------------------------------------------------------------- availability

let image: GuestImage | null = null;
let whyNot: string | null | undefined;

/**
 * Null when guests can boot here (QEMU present, image built or buildable),
 * else the reason to skip. Builds the image on first call (synchronously:
 * may take a few seconds, longer when the packages must be downloaded).
 */
export function guestAvailable(): string | null {
  if (whyNot !== undefined) return whyNot;
  try {
    const r = new Deno.Command(QEMU, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    if (!r.success) throw new Error();
  } catch {
    return (whyNot = `needs ${QEMU} (scripts/install-deps.sh --qemu)`);
  }
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return (whyNot = "needs x86_64 Linux");
  }
  try {
    image = prepareGuest();
    whyNot = null;
  } catch (e) {
    whyNot = `no guest image: ${(e as Error).message} (scripts/guest/prepare.ts)`;
  }
  return whyNot;
}

/** The prepared image (throws when guestAvailable() gives a reason). */
export function guestImage(): GuestImage {
  const why = guestAvailable();
  if (why) throw new Error(why);
  return image!;
}

// ---------------------------------------------------------------- NIC arguments

let macCounter = 0;
/** A locally administered unicast MAC unique within this process (and, mostly, across processes). */
export function guestMac(): string {
  const n = ++macCounter;
  const b = [
    0x52,
    0x54,
    (Deno.pid >> 16) & 0xff,
    (Deno.pid >> 8) & 0xff,
    Deno.pid & 0xff,
    n & 0xff,
  ];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

export interface NicOptions {
  /** The guest NIC's MAC (default: guestMac()). */
  mac?: string;
  /** Extra `,key=value` options of the virtio-net-pci device. */
  device?: string;
}

/**
 * A virtio NIC on an existing TAP (QEMU opens it by name; vale attaches its
 * kernel side). `vnetHdr` is off unless asked for: with it the guest sends
 * offloaded (TSO/partial-checksum) frames into the TAP.
 */
export function tapNic(
  id: string,
  ifname: string,
  opts: NicOptions & { vnetHdr?: boolean } = {},
): string[] {
  return [
    "-netdev",
    `tap,id=${id},ifname=${ifname},script=no,downscript=no,vnet_hdr=${opts.vnetHdr ? "on" : "off"}`,
    "-device",
    `virtio-net-pci,netdev=${id},mac=${opts.mac ?? guestMac()}${opts.device ?? ""}`,
  ];
}

/**
 * A virtio NIC on QEMU's user-mode network (slirp) `net` (e.g. 10.0.2.0/24:
 * its gateway .2 answers ping). No root, no host interface: for guests that
 * need a NIC but no switch.
 */
export function userNic(id: string, net = "10.0.2.0/24", opts: NicOptions = {}): string[] {
  return [
    "-netdev",
    `user,id=${id},net=${net}`,
    "-device",
    `virtio-net-pci,netdev=${id},mac=${opts.mac ?? guestMac()}${opts.device ?? ""}`,
  ];
}

/**
 * A virtio NIC on a vhost-user socket. By default QEMU connects to `path`:
 * the back-end must already listen there (QEMU 7.2 exits at start when
 * nobody does, `reconnect` or not); `reconnect: N` makes it retry every N
 * seconds after the back-end goes away. `server: true` makes QEMU listen on
 * `path` instead, and it then waits for the back-end to connect before the
 * guest runs (vhost-user netdevs block at start). `vectors=0` (no MSI-X)
 * because QEMU 7.2 under TCG crashes in vhost-user with MSI-X. Needs shared
 * guest memory, which bootGuest turns on for it.
 */
export function vhostUserNic(
  id: string,
  path: string,
  opts: NicOptions & { server?: boolean; reconnect?: number; queues?: number } = {},
): string[] {
  const mode = opts.server ? ",server=on" : opts.reconnect ? `,reconnect=${opts.reconnect}` : "";
  return [
    "-chardev",
    `socket,id=${id}c,path=${path}${mode}`,
    "-netdev",
    `vhost-user,id=${id},chardev=${id}c${opts.queues ? `,queues=${opts.queues}` : ""}`,
    "-device",
    `virtio-net-pci,netdev=${id},mac=${opts.mac ?? guestMac()},vectors=0${opts.device ?? ""}`,
  ];
}

// ---------------------------------------------------------------- script pieces

/**
 * Shell lines for a guest script: ping `ip` once a second until it answers
 * (the switch port may come up after the guest), at most `tries` times;
 * then the script exits with `status` and prints "unreachable IP".
 */
export function pingUntil(ip: string, tries = 90, status = 10): string {
  return `n=0
until ping -c 1 -W 1 ${ip} >/dev/null 2>&1; do
  n=$((n + 1)); [ $n -ge ${tries} ] && { echo "unreachable ${ip}"; exit ${status}; }
done`;
}

// ---------------------------------------------------------------- boot

/** The kernel command line and QEMU arguments for `opts` (exported for tests of the helper). */
export function qemuArgs(img: GuestImage, initrd: string, opts: GuestOptions): string[] {
  const mem = opts.memMiB ?? 256;
  const netdevs = opts.netdevs ?? [];
  const shared = opts.sharedMemory ?? netdevs.some((a) => a.startsWith("vhost-user,"));
  const cmdline = [
    "console=ttyS0",
    "quiet",
    "panic=-1", // a panic reboots, and -no-reboot turns that into QEMU's exit
    // boot time under TCG: no crypto self-tests, no TSC calibration (~0.8 s of ~3.2 s)
    "cryptomgr.notests",
    "tsc=reliable",
    "no_timer_check",
    `vale.name=${opts.name}`,
  ];
  if (opts.ip?.length) cmdline.push(`vale.ip=${opts.ip.map((a) => a || "-").join(",")}`);
  if (opts.mtu?.length) cmdline.push(`vale.mtu=${opts.mtu.map((m) => m || "-").join(",")}`);
  if (opts.shell) cmdline.push("vale.shell=1");
  if (opts.modules?.length) cmdline.push(`vale.modules=${opts.modules.join(",")}`);
  for (const w of [...cmdline, ...(opts.append ?? [])]) {
    if (!/^[\x21-\x7e]+$/.test(w)) {
      throw new Error(`bad kernel command-line word ${JSON.stringify(w)}`);
    }
  }
  cmdline.push(...(opts.append ?? []));
  return [
    "-machine",
    `pc,accel=tcg${shared ? ",memory-backend=mem" : ""}`,
    ...(shared ? ["-object", `memory-backend-memfd,id=mem,size=${mem}M,share=on`] : []),
    "-m",
    `${mem}M`,
    "-smp",
    "1",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-serial",
    "stdio",
    "-monitor",
    "none",
    "-no-reboot",
    "-kernel",
    img.kernel,
    "-initrd",
    initrd,
    "-append",
    cmdline.join(" "),
    ...netdevs,
    ...(opts.qemuArgs ?? []),
  ];
}

let baseInitrd: Uint8Array | null = null;

/** Starts QEMU. The guest boots, runs `script` and powers off; see Guest. */
export async function bootGuest(opts: GuestOptions): Promise<Guest> {
  if (!/^[A-Za-z0-9_.-]{1,32}$/.test(opts.name)) {
    throw new Error(`bad guest name ${JSON.stringify(opts.name)}`);
  }
  const img = guestImage();
  baseInitrd ??= await Deno.readFile(img.initramfs);
  const extra: CpioEntry[] = [];
  for (const [p, data] of Object.entries(opts.files ?? {})) {
    // parent directories first (those the base has are harmless to repeat)
    const parts = p.replace(/^\/+/, "").split("/");
    for (let i = 1; i < parts.length; i++) {
      extra.push({ path: parts.slice(0, i).join("/"), type: "dir" });
    }
    extra.push({ path: p, type: "file", data, mode: 0o755 });
  }
  if (opts.script !== undefined) {
    extra.push({ path: "test.sh", type: "file", data: opts.script, mode: 0o755 });
  }
  const perBoot = cpioNewc(extra);
  const tmp = await Deno.makeTempDir({ prefix: `vale-guest-${opts.name}-` });
  const initrd = `${tmp}/initrd.cpio`;
  const all = new Uint8Array(baseInitrd.length + perBoot.length);
  all.set(baseInitrd);
  all.set(perBoot, baseInitrd.length);
  await Deno.writeFile(initrd, all);

  const args = qemuArgs(img, initrd, opts);
  const t0 = performance.now();
  const proc = new Deno.Command(QEMU, {
    args,
    stdin: opts.shell ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let out = "", err = "", exited = false, timedOut = false;
  let readyAt: number | null = null;
  const readyRe = new RegExp(`^VALE-GUEST ${opts.name.replace(/\./g, "\\.")} ready$`, "m");
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const w of [...watchers]) w();
  };
  const pump = async (s: ReadableStream<Uint8Array>, toOut: boolean) => {
    const d = new TextDecoder();
    for await (const chunk of s) {
      const text = d.decode(chunk, { stream: true }).replace(/\r/g, "");
      if (toOut) {
        out += text;
        if (readyAt === null && readyRe.test(out)) readyAt = performance.now() - t0;
      } else err += text;
      notify();
    }
  };
  const pumps = Promise.all([pump(proc.stdout, true), pump(proc.stderr, false)]).catch(() => {});
  const timer = setTimeout(() => {
    timedOut = true;
    void kill(1000);
  }, opts.timeoutMs ?? 60000);
  const status = proc.status.then(async (s) => {
    clearTimeout(timer);
    await pumps;
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    exited = true;
    notify();
    return { s, totalMs: performance.now() - t0 };
  });

  const stdin = opts.shell ? proc.stdin.getWriter() : null;
  const closeStdin = () => stdin?.close().catch(() => {});

  let killing: Promise<void> | null = null;
  function kill(graceMs = 1000): Promise<void> {
    killing ??= (async () => {
      await closeStdin();
      if (!exited) {
        try {
          proc.kill("SIGTERM");
        } catch { /* gone */ }
        const grace = setTimeout(() => {
          try {
            proc.kill("SIGKILL");
          } catch { /* gone */ }
        }, graceMs);
        await status;
        clearTimeout(grace);
      }
      await status; // (which removes the per-boot initrd)
    })();
    return killing;
  }

  const tail = () => {
    const o = out.split("\n").slice(-15).join("\n");
    return `--- ${opts.name} serial (tail) ---\n${o}\n--- qemu stderr ---\n${err.trim()}`;
  };

  function waitFor(re: RegExp, ms = opts.timeoutMs ?? 60000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = out.match(re);
        if (m) {
          done();
          resolve(m);
        } else if (exited) {
          done();
          reject(new Error(`guest ${opts.name} ended before ${re}\n${tail()}`));
        }
      };
      const t = setTimeout(() => {
        done();
        reject(new Error(`guest ${opts.name}: no ${re} within ${ms} ms\n${tail()}`));
      }, ms);
      const done = () => {
        clearTimeout(t);
        watchers.delete(check);
      };
      watchers.add(check);
      check();
    });
  }

  async function result(): Promise<GuestResult> {
    const { s, totalMs } = await status;
    const exitRe = new RegExp(`^VALE-GUEST ${opts.name.replace(/\./g, "\\.")} exit (\\d+)$`, "m");
    const m = exitRe.exec(out);
    const r = readyRe.exec(out);
    return {
      status: m ? Number(m[1]) : null,
      output: out,
      script: r ? out.slice(r.index + r[0].length + 1, m ? m.index : undefined) : "",
      stderr: err,
      qemuCode: s.signal ? null : s.code,
      bootMs: readyAt,
      totalMs,
      timedOut,
    };
  }

  const tagRe = opts.name.replace(/\./g, "\\.");
  let runId = 0;
  let runChain: Promise<unknown> = Promise.resolve();
  function run(script: string, ms = 60000): Promise<RunResult> {
    if (!stdin) return Promise.reject(new Error(`guest ${opts.name}: not booted with shell: true`));
    const bytes = new TextEncoder().encode(script);
    if (bytes.length > 2048) {
      return Promise.reject(new Error(`guest ${opts.name}: run() takes at most 2 KiB (use files)`));
    }
    const id = ++runId;
    const b64 = btoa(String.fromCharCode(...bytes));
    const p = runChain.then(async () => {
      await waitFor(new RegExp(`^VALE-GUEST ${tagRe} shell$`, "m"), ms);
      await stdin.write(new TextEncoder().encode(`run ${id} ${b64}\n`));
      const start = await waitFor(new RegExp(`^VALE-GUEST ${tagRe} start ${id}$`, "m"), ms);
      const done = await waitFor(new RegExp(`^VALE-GUEST ${tagRe} done ${id} (\\d+)$`, "m"), ms);
      const from = start.index! + start[0].length + 1;
      return { status: Number(done[1]), output: out.slice(from, Math.max(from, done.index!)) };
    });
    runChain = p.catch(() => {});
    return p;
  }
  async function exit(st = 0): Promise<GuestResult> {
    if (!stdin) throw new Error(`guest ${opts.name}: not booted with shell: true`);
    await runChain;
    await waitFor(new RegExp(`^VALE-GUEST ${tagRe} shell$`, "m"));
    await stdin.write(new TextEncoder().encode(`exit ${st | 0}\n`));
    await closeStdin();
    return await result();
  }

  return {
    name: opts.name,
    pid: proc.pid,
    output: () => out,
    waitFor,
    ready: async (ms?: number) => {
      await waitFor(readyRe, ms);
      return readyAt!;
    },
    result,
    run,
    exit,
    kill,
    [Symbol.asyncDispose]: () => kill(),
  };
}

/** A readable failure message for a guest result (serial tail and QEMU's stderr). */
export function describe(r: GuestResult, name = "guest"): string {
  return `${name}: status ${r.status}, qemu ${r.qemuCode}${r.timedOut ? ", timed out" : ""}\n` +
    `--- serial ---\n${
      r.output.split("\n").slice(-40).join("\n")
    }\n--- qemu stderr ---\n${r.stderr}`;
}
