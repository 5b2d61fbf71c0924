/**
 * `netmap:IF`, `xdp:IF` and `packet:IF` ports: an existing kernel interface
 * through AF_XDP (when it can be set up, or forced) or PACKET_MMAP. The
 * `netmap` entry of lib/open.ts.
 *
 * @module
 */
import { Errno, ValeError } from "../errors.ts";
import type { PortSpec } from "../names.ts";
import type { KernelIoOptions } from "./kernel_io.ts";
import { type KernelPort, type KernelPortOptions, openKernelPort } from "./kernel_port.ts";

/** Opens `netmap:IF` (auto), `xdp:IF` or `packet:IF`; `-N` binds one queue (AF_XDP only). */
export function openNetmapPort(spec: PortSpec, opts: KernelPortOptions = {}): KernelPort {
  const io: KernelIoOptions = {
    ...opts.io,
    kind: spec.method === "xdp" ? "xdp" : spec.method === "packet" ? "packet" : "auto",
  };
  if (spec.mode === "one-nic") {
    if (io.kind === "packet") {
      throw new ValeError(
        Errno.EOPNOTSUPP,
        `${spec.name}-${spec.ring}: one queue (-N) needs AF_XDP`,
      );
    }
    io.kind = "xdp";
    io.queue = spec.ring ?? 0;
  }
  return openKernelPort(spec, io, opts);
}
