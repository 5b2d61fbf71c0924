/**
 * VMs of a topology: the QEMU command line of a guest whose NICs are ports of
 * the topology's switches, starting it detached, and the running guest's
 * serial console (a Unix socket QEMU listens on, everything it prints also
 * logged to a file), through which commands run in a guest that uses vale's
 * test-guest init (scripts/guest/init.sh, `vale.shell=1`).
 *
 * Files of topology P, in `$VALE_RUN_DIR/.topo/P/` (a directory checked and
 * created as the state directory is, removed by the teardown):
 * `P-VM-eK` the vhost-user socket of the VM's K-th NIC (the switch port is
 * named after it), `VM.console` the serial console's socket, `VM.log` all
 * the console printed, `VM.qemu.log` QEMU's own messages.
 *
 * @module
 */
import { Errno, ValeError } from "../errors.ts";
import type { PlannedInterface, VmSpec } from "./spec.ts";
import { procAlive, type ProcRef, procRef, type RunResult, sleep } from "./sys.ts";

/** The QEMU binary. */
export const QEMU = "qemu-system-x86_64";

/** sockaddr_un's sun_path holds 107 bytes and a NUL. */
const MAX_SOCKET_PATH = 107;

/** The directory of topology `name`'s VM files. */
export function vmDir(runDir: string, name: string): string {
  return `${runDir}/.topo/${name}`;
}

/** The files of one VM. */
export function vmFiles(runDir: string, topo: string, vm: string) {
  const d = vmDir(runDir, topo);
  return {
    console: `${d}/${vm}.console`,
    log: `${d}/${vm}.log`,
    qemuLog: `${d}/${vm}.qemu.log`,
  };
}

/** The vhost-user socket of a VM's NIC (its basename is the switch port's name). */
export function vmSocket(runDir: string, topo: string, i: PlannedInterface): string {
  return `${vmDir(runDir, topo)}/${i.port}`;
}

/** Throws ENAMETOOLONG when a socket path does not fit sockaddr_un. */
export function checkSocketPath(path: string): void {
  if (new TextEncoder().encode(path).length > MAX_SOCKET_PATH) {
    throw new ValeError(
      Errno.ENAMETOOLONG,
      `socket ${path} is longer than ${MAX_SOCKET_PATH} bytes: choose a shorter VALE_RUN_DIR`,
    );
  }
}

/** Null when QEMU can run here, else why not. */
export function qemuMissing(): string | null {
  try {
    const r = new Deno.Command(QEMU, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return r.success ? null : `${QEMU} --version failed`;
  } catch {
    return `a VM needs ${QEMU} (scripts/install-deps.sh --qemu)`;
  }
}

/** The kernel command line of a VM. */
export function vmCmdline(name: string, spec: VmSpec, ifs: PlannedInterface[]): string {
  const w = ["console=ttyS0"];
  if (spec.init === "vale") {
    w.push(
      "quiet",
      "panic=-1", // a panic reboots, and -no-reboot turns that into QEMU's exit
      "cryptomgr.notests", // boot time under TCG
      "tsc=reliable",
      "no_timer_check",
      `vale.name=${name}`,
      "vale.shell=1",
    );
    // one address per NIC on the command line; the rest are added over the console
    if (ifs.some((i) => i.ip.length)) {
      w.push(`vale.ip=${ifs.map((i) => i.ip[0] ?? "-").join(",")}`);
    }
    if (ifs.some((i) => i.mtu)) w.push(`vale.mtu=${ifs.map((i) => i.mtu ?? "-").join(",")}`);
    // no IPv6 address: no IPv6 at all, so the guest sends nothing on its own
    if (!ifs.some((i) => i.ip6.length)) w.push("ipv6.disable=1");
  }
  if (spec.append) w.push(spec.append);
  return w.join(" ");
}

/** QEMU's arguments for a VM. */
export function qemuArgs(
  runDir: string,
  topo: string,
  name: string,
  spec: VmSpec,
  ifs: PlannedInterface[],
): string[] {
  const mem = spec.memoryMiB ?? 256;
  const f = vmFiles(runDir, topo, name);
  const nics = ifs.flatMap((i, k) => {
    const dev = `virtio-net-pci,netdev=n${k},mac=${i.mac}`;
    if (i.kind === "vmtap") {
      return [
        "-netdev",
        `tap,id=n${k},ifname=${i.port},script=no,downscript=no,vnet_hdr=off`,
        "-device",
        dev,
      ];
    }
    return [
      "-chardev",
      `socket,id=n${k}c,path=${vmSocket(runDir, topo, i)}`,
      "-netdev",
      `vhost-user,id=n${k},chardev=n${k}c`,
      "-device",
      // QEMU 7.2 under TCG crashes in vhost-user with MSI-X
      `${dev},vectors=0`,
    ];
  });
  return [
    "-name",
    `vale-${topo}-${name}`,
    "-machine",
    `pc,accel=${spec.accel ?? "tcg"},memory-backend=mem`,
    // vhost-user maps the guest's memory: it must be a shared memfd
    "-object",
    `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    "-m",
    `${mem}M`,
    "-smp",
    String(spec.cpus ?? 1),
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-monitor",
    "none",
    "-no-reboot",
    "-chardev",
    `socket,id=con,path=${f.console},server=on,wait=off,logfile=${f.log}`,
    "-serial",
    "chardev:con",
    "-kernel",
    spec.kernel,
    ...(spec.initrd ? ["-initrd", spec.initrd] : []),
    "-append",
    vmCmdline(name, spec, ifs),
    ...nics,
    ...(spec.qemuArgs ?? []),
  ];
}

/**
 * Start QEMU detached (its own session: it outlives this process when the
 * topology is detached), its messages to `VM.qemu.log`. `record` gets its
 * process before anything waits.
 */
export function startQemu(
  runDir: string,
  topo: string,
  name: string,
  spec: VmSpec,
  ifs: PlannedInterface[],
  record: (p: ProcRef) => void,
): ProcRef {
  const f = vmFiles(runDir, topo, name);
  for (
    const p of [
      f.console,
      ...ifs.filter((i) => i.kind === "vhost").map((i) => vmSocket(runDir, topo, i)),
    ]
  ) {
    checkSocketPath(p);
  }
  const args = qemuArgs(runDir, topo, name, spec, ifs);
  // `exec` keeps the pid (and start time): the recorded process is QEMU itself
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$@" 2>"$0"', f.qemuLog, QEMU, ...args],
    cwd: "/",
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const ref = procRef(child.pid);
  record(ref);
  child.unref();
  child.status.catch(() => {});
  return ref;
}

/**
 * Running QEMUs of topology `topo` found by their `-name vale-P-VM`: one
 * started by a process killed before it recorded the pid (the names carry
 * the topology's prefix, so such a process is the topology's).
 */
export function qemusByName(topo: string, vms: string[]): ProcRef[] {
  if (!vms.length) return [];
  const want = new Set(vms.map((v) => `vale-${topo}-${v}`));
  const out: ProcRef[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync("/proc")];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      if (!argv[0]?.endsWith(QEMU)) continue;
      const i = argv.indexOf("-name");
      if (i > 0 && want.has(argv[i + 1])) {
        const ref = procRef(Number(e.name));
        if (ref.start) out.push(ref);
      }
    } catch { /* gone */ }
  }
  return out;
}

/** Up to 64 KiB of file `path` from offset `off` (empty at its end or when it is missing). */
function readChunk(path: string, off: number): Uint8Array {
  let f: Deno.FsFile | undefined;
  try {
    f = Deno.openSync(path, { read: true });
    f.seekSync(off, Deno.SeekMode.Start);
    const buf = new Uint8Array(65536);
    const n = f.readSync(buf);
    return n ? buf.subarray(0, n) : new Uint8Array(0);
  } catch {
    return new Uint8Array(0);
  } finally {
    f?.close();
  }
}

function readText(path: string): string {
  try {
    return new TextDecoder().decode(Deno.readFileSync(path)).replace(/\r/g, "");
  } catch {
    return "";
  }
}

/** One interface of a VM. */
export interface VmInterface {
  /** Its name in the guest (`eth0`: the K-th NIC). */
  name: string;
  /** Its MAC. */
  mac: string;
  /** IPv4 addresses with prefix length. */
  ip: string[];
  /** IPv6 addresses with prefix length. */
  ip6: string[];
  /** The switch it reaches (logical name). */
  switch: string;
  /** The switch port, full name. */
  port: string;
  /** vhost (a vhost-user port) or vmtap (a TAP QEMU opens). */
  kind: PlannedInterface["kind"];
}

/** Quote a word for the guest's shell. */
function shQuote(w: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * A VM of a running topology. With vale's test-guest init (`init: "vale"`),
 * `run` and `sh` run commands in the guest over its serial console; with
 * another image only the console's output (`console()`, `waitFor`) is read.
 */
export class Vm {
  /** Name in the topology. */
  readonly name: string;
  /** Its NICs, in order (eth0, eth1, …). */
  readonly interfaces: VmInterface[];
  /** Its spec. */
  readonly spec: VmSpec;
  /** The serial console's socket, its log, QEMU's messages. */
  readonly files: { console: string; log: string; qemuLog: string };
  #proc: () => ProcRef | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  /** @internal built by the Network. */
  constructor(
    name: string,
    spec: VmSpec,
    ifs: PlannedInterface[],
    files: { console: string; log: string; qemuLog: string },
    proc: () => ProcRef | undefined,
  ) {
    this.name = name;
    this.spec = spec;
    this.files = files;
    this.#proc = proc;
    this.interfaces = ifs.map((i) => ({
      name: i.ifname,
      mac: i.mac,
      ip: i.ip,
      ip6: i.ip6,
      switch: i.switch,
      port: `${i.sw}:${i.port}`,
      kind: i.kind,
    }));
  }

  /** The first IPv4 address, without prefix length. */
  get ip(): string | undefined {
    return this.interfaces.flatMap((i) => i.ip)[0]?.split("/")[0];
  }

  /** The first IPv6 address, without prefix length. */
  get ip6(): string | undefined {
    return this.interfaces.flatMap((i) => i.ip6)[0]?.split("/")[0];
  }

  /** The MAC of the first NIC. */
  get mac(): string | undefined {
    return this.interfaces[0]?.mac;
  }

  /** QEMU's pid (0 if it is not running). */
  get pid(): number {
    const p = this.#proc();
    return p && procAlive(p) ? p.pid : 0;
  }

  /** Is QEMU running? */
  get running(): boolean {
    return this.pid > 0;
  }

  /** Everything the serial console printed so far. */
  console(): string {
    return readText(this.files.log);
  }

  /** The last lines of the console and QEMU's messages, for errors. */
  tail(lines = 15): string {
    let size = 0;
    try {
      size = Deno.statSync(this.files.log).size;
    } catch { /* none */ }
    const last = new TextDecoder().decode(readChunk(this.files.log, Math.max(0, size - 65536)))
      .replace(/\r/g, "");
    return `--- ${this.name} console (tail) ---\n${
      last.split("\n").slice(-lines).join("\n")
    }\n--- qemu ---\n${readText(this.files.qemuLog).trim()}`;
  }

  /**
   * Wait for `re` in the console's output; ETIMEDOUT after `ms`, ESRCH
   * (with the console's tail) when QEMU ends first; `signal` aborts the wait.
   */
  async waitFor(re: RegExp, ms = 60000, signal?: AbortSignal): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    // read what is new each time (a chatty guest's log grows), keeping the
    // last 8 KiB for matches that span a read
    let off = 0, window = "";
    const dec = new TextDecoder();
    for (;;) {
      signal?.throwIfAborted();
      const alive = this.running; // before the read: a marker printed just before QEMU ends counts
      for (let n = 0; n < 64; n++) { // at most 4 MiB per poll
        const chunk = readChunk(this.files.log, off);
        if (!chunk.length) break;
        off += chunk.length;
        window += dec.decode(chunk, { stream: true }).replace(/\r/g, "");
        const m = window.match(re);
        if (m) return m;
        window = window.slice(-8192);
      }
      if (!alive) {
        throw new ValeError(
          Errno.ESRCH,
          `VM ${this.name}: QEMU ended before ${re}\n${this.tail()}`,
        );
      }
      if (Date.now() > end) {
        throw new ValeError(
          Errno.ETIMEDOUT,
          `VM ${this.name}: no ${re} within ${ms} ms\n${this.tail()}`,
        );
      }
      await sleep(100);
    }
  }

  #shell(): void {
    if (this.spec.init !== "vale") {
      throw new ValeError(
        Errno.EOPNOTSUPP,
        `VM ${this.name}: commands run only in a guest with vale's test-guest init ` +
          `(init: "vale"); read its console with console() / waitFor()`,
      );
    }
  }

  /**
   * Run a shell script in the guest (busybox sh, cwd /tmp, stdin /dev/null;
   * at most 2 KiB) through its serial console and resolve with its status
   * and output (kernel messages printed meanwhile included). One command at
   * a time per VM (the console has one client at a time; other processes
   * queue behind). End a command with `&` (its output redirected) to leave
   * it running.
   */
  sh(script: string, o: { timeoutMs?: number } = {}): Promise<RunResult> {
    try {
      this.#shell();
    } catch (e) {
      return Promise.reject(e);
    }
    const bytes = new TextEncoder().encode(script);
    if (bytes.length > 2048) {
      return Promise.reject(
        new ValeError(Errno.EMSGSIZE, `VM ${this.name}: a command takes at most 2 KiB`),
      );
    }
    const p = this.#chain.then(() => this.#runOnce(bytes, o.timeoutMs ?? 60000));
    this.#chain = p.catch(() => {});
    return p;
  }

  /** Run a program in the guest: `await vm.run(["ip", "-br", "addr"])` (words quoted for its shell). */
  run(cmd: string[], o: { timeoutMs?: number } = {}): Promise<RunResult> {
    return this.sh(cmd.map(shQuote).join(" "), o);
  }

  async #runOnce(bytes: Uint8Array, ms: number): Promise<RunResult> {
    const tag = this.name;
    await this.waitFor(new RegExp(`^VALE-GUEST ${tag} shell$`, "m"), ms);
    const id = 1 + Math.floor(Math.random() * 0x7fffffff);
    let b64 = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      b64 += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    b64 = btoa(b64);
    const conn = await Deno.connect({ transport: "unix", path: this.files.console });
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch { /* closed */ }
    }, ms);
    try {
      await conn.write(new TextEncoder().encode(`run ${id} ${b64}\n`));
      const dec = new TextDecoder();
      const buf = new Uint8Array(16384);
      const startRe = new RegExp(`^VALE-GUEST ${tag} start ${id}$`, "m");
      const doneRe = new RegExp(`^VALE-GUEST ${tag} done ${id} (\\d+)$`, "m");
      let out = "";
      for (;;) {
        let n: number | null;
        try {
          n = await conn.read(buf);
        } catch {
          n = null;
        }
        if (n === null) {
          throw new ValeError(
            this.running ? Errno.ETIMEDOUT : Errno.ESRCH,
            `VM ${this.name}: no answer to a command within ${ms} ms\n${this.tail()}`,
          );
        }
        out += dec.decode(buf.subarray(0, n), { stream: true }).replace(/\r/g, "");
        const d = doneRe.exec(out);
        if (d) {
          const s = startRe.exec(out);
          const from = s ? s.index + s[0].length + 1 : 0;
          const text = out.slice(from, Math.max(from, d.index));
          return { code: Number(d[1]), success: d[1] === "0", stdout: text, stderr: "" };
        }
      }
    } finally {
      clearTimeout(timer);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }
}
