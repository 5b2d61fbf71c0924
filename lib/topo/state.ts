/**
 * The state file of a topology, `$VALE_RUN_DIR/.topo/NAME.json`: what the
 * topology created (written before each thing is created, so a process
 * killed at any point leaves a record of everything it may have made), who
 * keeps it up, and its spec. The directory is checked as switches are (no
 * symlink on the way, owned by us or root, writable by nobody else:
 * vale_secure_dir, c-src/core/fsafe.c) and created 0700.
 *
 * @module
 */
import { cstr, vale } from "../../ffi/lib.ts";
import { check } from "../errors.ts";
import { runDir as defaultRunDir } from "../rundir.ts";
import type { TopologySpec } from "./spec.ts";
import type { ProcRef } from "./sys.ts";

/** What a topology created and who keeps it up. */
export interface TopologyState {
  /** Layout of this file. */
  version: 1;
  /** Topology name. */
  name: string;
  /** Run directory of its switches. */
  runDir: string;
  /** The spec it was brought up from. */
  spec: TopologySpec;
  /** The process that keeps it up and tears it down when it ends; null: detached (`vale topo up`). */
  owner: ProcRef | null;
  /** Bring-up finished. */
  complete: boolean;
  /** When `up` started (ISO time). */
  created: string;
  /** Namespaces. */
  netns: string[];
  /** Root-namespace interfaces (veth root ends). */
  links: string[];
  /** Attachments (`valeP_S:PORT`). */
  attachments: string[];
  /** Bridge processes. */
  bridges: ProcRef[];
  /** Switches (vale names). */
  switches: string[];
  /** Processes started in hosts by `host.spawn`. */
  procs: ProcRef[];
}

/** Is `RUN/.topo` safe to use (created 0700 when `create`; throws the reason then)? */
export function secureTopoDir(runDir: string, create: boolean): boolean {
  const rc = vale().vale_secure_dir(cstr(runDir), cstr(".topo"), +create);
  if (create) check(rc);
  return rc === 0;
}

/** Path of the state file of topology `name`. */
export function statePath(name: string, runDir?: string): string {
  return `${defaultRunDir(runDir)}/.topo/${name}.json`;
}

/** The state of topology `name`, or null if there is none (or it cannot be trusted). */
export function readState(name: string, runDir?: string): TopologyState | null {
  const rd = defaultRunDir(runDir);
  if (!secureTopoDir(rd, false)) return null;
  try {
    const st = JSON.parse(Deno.readTextFileSync(statePath(name, rd))) as TopologyState;
    return st && st.version === 1 && st.name === name ? st : null;
  } catch {
    return null;
  }
}

/** Every topology with a state file in the run directory. */
export function listStates(runDir?: string): TopologyState[] {
  const rd = defaultRunDir(runDir);
  if (!secureTopoDir(rd, false)) return [];
  const out: TopologyState[] = [];
  try {
    for (const e of Deno.readDirSync(`${rd}/.topo`)) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const st = readState(e.name.slice(0, -5), rd);
      if (st) out.push(st);
    }
  } catch { /* no directory */ }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Create the state file; false if one exists already (another `up` of the
 * same topology, or leftovers to remove first).
 */
export function createState(st: TopologyState): boolean {
  secureTopoDir(st.runDir, true);
  try {
    Deno.writeTextFileSync(statePath(st.name, st.runDir), JSON.stringify(st, null, 1) + "\n", {
      createNew: true,
      mode: 0o600,
    });
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  }
}

/** Rewrite the state file atomically (readers never see half of it). */
export function writeState(st: TopologyState): void {
  const p = statePath(st.name, st.runDir);
  const tmp = `${p}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(st, null, 1) + "\n", { mode: 0o600 });
  Deno.renameSync(tmp, p);
}

/** Remove the state file. */
export function removeState(name: string, runDir?: string): void {
  try {
    Deno.removeSync(statePath(name, runDir));
  } catch { /* gone */ }
}
