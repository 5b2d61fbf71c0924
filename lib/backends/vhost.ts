/**
 * `vhost:PATH` and `vhost-client:PATH` ports: a vhost-user front-end (a QEMU
 * VM's virtio-net, DPDK's virtio-user) on the other side of a Unix socket.
 * `vhost:` listens on PATH (QEMU `-chardev socket,path=PATH`), `vhost-client:`
 * connects to it and reconnects (QEMU `server=on`). The `vhost` entry of
 * lib/open.ts; the protocol and rings are C (c-src/vhost/), driven by the
 * same forwarder as kernel ports. The port is down (sends are dropped and
 * counted by the forwarder) until a front-end has its queues running.
 *
 * @module
 */
import type { PortSpec } from "../names.ts";
import { type KernelPort, type KernelPortOptions, openKernelPort } from "./kernel_port.ts";

/** Opens `vhost:PATH` / `vhost-client:PATH`; `KernelPort.vhostStatus()` tells the front-end's state. */
export function openVhostPort(spec: PortSpec, opts: KernelPortOptions = {}): KernelPort {
  return openKernelPort(
    spec,
    { ...opts.io, kind: spec.vhost?.client ? "vhost-client" : "vhost" },
    opts,
  );
}
