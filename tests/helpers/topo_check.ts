// What the topology tests (topology_test.ts, topology_vm_test.ts) share: the
// check that a topology left nothing behind, the processes that mention a
// name, private run directories removed after each case, and reading a
// child's stdout up to a line.
import assert from "node:assert/strict";
import { tearDownByName } from "../../lib/topo/lifecycle.ts";
import { procsMentioning } from "./procs.ts";

const dec = new TextDecoder();

async function out(cmd: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(60000),
  }).output();
  return dec.decode(r.stdout);
}

/** A command's exit code and output; killed after `ms` (the tests' CLI runs: vale topo, ip). */
export async function sh(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  ms = 120000,
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(cmd, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** Live processes whose command line mentions `s` (QEMU runs as `-name vale-P-VM`), as "pid: command". */
export function procsWith(s: string): string[] {
  return procsMentioning(s).map((p) => `${p.pid}: ${p.cmd.slice(0, 200)}`);
}

/**
 * Nothing of topology `name` may be left in `runDir` or on the machine: processes (forwarders,
 * bridges, QEMU), namespaces, interfaces, switches, attachment and state files, VM sockets and
 * consoles.
 */
export async function assertTopologyClean(name: string, runDir: string): Promise<void> {
  const ns = (await out("ip", ["netns", "list"])).split("\n").filter((l) =>
    l.startsWith(`vale-${name}-`)
  );
  assert.deepEqual(ns, [], `namespaces left: ${ns.join(", ")}`);
  const links = (await out("ip", ["-br", "link"])).split("\n").filter((l) =>
    l.startsWith(`${name}-`)
  );
  assert.deepEqual(links, [], `interfaces left: ${links.join(", ")}`);
  const files = [...Deno.readDirSync(runDir)].map((e) => e.name).filter((n) =>
    n.startsWith(`vale${name}_`)
  );
  assert.deepEqual(files, [], `switches left in ${runDir}: ${files.join(", ")}`);
  for (const sub of [".attach", ".topo"]) {
    let left: string[] = [];
    try {
      left = [...Deno.readDirSync(`${runDir}/${sub}`)].map((e) => e.name)
        .filter((n) => n.startsWith(`vale${name}_`) || n.startsWith(name));
    } catch { /* none */ }
    assert.deepEqual(
      left,
      [],
      `${sub} files (state, VM sockets, consoles) left: ${left.join(", ")}`,
    );
  }
  const ps = [...procsWith(`vale${name}_`), ...procsWith(`vale-${name}-`)];
  assert.deepEqual(ps, [], `processes left:\n${ps.join("\n")}`);
}

/** Private run directories in /dev/shm, made per case and removed by `removeAll`. */
export class RunDirs {
  #dirs: string[] = [];
  constructor(readonly prefix: string) {}
  /** A new empty run directory. */
  async fresh(): Promise<string> {
    const d = await Deno.makeTempDir({ dir: "/dev/shm", prefix: this.prefix });
    this.#dirs.push(d);
    return d;
  }
  /**
   * Remove every directory made so far. A case that failed half-way may have
   * left a topology up (an owner SIGKILLed on purpose leaves its VM and
   * forwarders running, detached): each topology recorded in the directory is
   * torn down first, and whatever still runs with the directory on its command
   * line (forwarders, QEMU) is killed, so no failure leaves processes behind.
   */
  async removeAll(): Promise<void> {
    for (const d of this.#dirs.splice(0)) {
      let names: string[] = [];
      try {
        names = [...Deno.readDirSync(`${d}/.topo`)]
          .filter((e) => e.isFile && e.name.endsWith(".json"))
          .map((e) => e.name.slice(0, -5));
      } catch { /* no topology */ }
      for (const n of names) await tearDownByName(n, d).catch(() => {});
      for (const { pid } of procsMentioning(d)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  }
}

/** Read a child's stdout until it contains `what` (bounded); fails with its output otherwise. */
export async function waitLine(
  child: Deno.ChildProcess,
  what: string,
  ms: number,
): Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const end = Date.now() + ms;
  try {
    while (!text.includes(what) && Date.now() < end) {
      const r = await Promise.race([
        reader.read(),
        new Promise<{ done: true; value: undefined }>((res) =>
          setTimeout(() => res({ done: true, value: undefined }), Math.max(0, end - Date.now()))
        ),
      ]);
      if (r.done) break;
      text += r.value;
    }
  } finally {
    reader.releaseLock();
  }
  if (!text.includes(what)) {
    child.kill("SIGKILL");
    const e = await new Response(child.stderr).text().catch(() => "");
    assert.fail(`no '${what}' from the child; stdout: ${text}; stderr: ${e}`);
  }
  return text;
}
