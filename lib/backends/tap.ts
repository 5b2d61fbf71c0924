/**
 * `tap:NAME` ports: a TAP device (created if missing, brought up), the host
 * stack, a namespace's or a VM's side. The `tap` entry of lib/open.ts.
 *
 * @module
 */
import type { PortSpec } from "../names.ts";
import { type KernelPort, type KernelPortOptions, openKernelPort } from "./kernel_port.ts";

/** Opens `tap:NAME`. */
export function openTapPort(spec: PortSpec, opts: KernelPortOptions = {}): KernelPort {
  // a new TAP is down; the port is meant to pass traffic
  return openKernelPort(spec, { ...opts.io, kind: "tap", up: opts.io?.up ?? true }, opts);
}
