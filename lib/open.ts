/**
 * The one way to open a port: {@link openPort} parses the name once
 * (lib/names.ts) and hands it to the opener of its kind in {@link OPENERS}.
 * Every place that takes a port name (the API, pkt-gen, bridge, capture)
 * comes through here.
 *
 * A new port kind is one entry in {@link OPENERS} and one module that opens
 * it (its name grammar goes in lib/names.ts). A kind whose opener is not
 * written yet has a {@link notYet} entry, so it is refused here, once, with
 * what is missing.
 *
 * @module
 */
import { openNetmapPort } from "./backends/netmap.ts";
import { openTapPort } from "./backends/tap.ts";
import { openVhostPort } from "./backends/vhost.ts";
import type { KernelPortOptions } from "./backends/kernel_port.ts";
import { Errno, ValeError } from "./errors.ts";
import { parsePortName, type PortKind, type PortSpec } from "./names.ts";
import { openSwitchPort, type Port } from "./switch/port.ts";

/**
 * Options of {@link openPort}: those of a switch port (`runDir`, `noCreate`,
 * `group`) and, for kernel ports, of the kernel side (`io`, `forwarder`).
 */
export type PortOptions = KernelPortOptions;

/** Opens a parsed port name of one kind. */
export type PortOpener = (spec: PortSpec, opts: PortOptions) => Port;

/** An opener that refuses: kind `kind` cannot be opened yet, for `missing`. */
export function notYet(missing: string): PortOpener {
  return (spec) => {
    throw new ValeError(
      Errno.EOPNOTSUPP,
      `${spec.name}: ${spec.kind} ports are not available yet (${missing})`,
    );
  };
}

/** Who opens each kind of port. */
export const OPENERS: Readonly<Record<PortKind, PortOpener>> = {
  vale: openSwitchPort, // lib/switch/port.ts
  tap: openTapPort, // lib/backends/tap.ts
  netmap: openNetmapPort, // lib/backends/netmap.ts (also xdp: and packet:)
  memif: notYet(
    "no memif client or server yet: the memif control protocol over the UNIX socket",
  ),
  vhost: openVhostPort, // lib/backends/vhost.ts (vhost: and vhost-client:)
  pcap: notYet(
    "no pcap port yet: replay a file with 'vale replay PORT FILE', capture with 'vale capture'",
  ),
};

/** What no kind supports here: refused before the kind's opener runs. */
function refuseUnsupported(spec: PortSpec): void {
  const why = (spec.flags.zcopyMonitor || spec.flags.txMonitor || spec.flags.rxMonitor) &&
      spec.kind !== "vale"
    ? "monitors exist on switch ports only (monitor the switch port it is attached to)"
    : spec.memId !== undefined || spec.share !== undefined
    ? "memory regions are per port here (@N/@share unsupported)"
    : undefined;
  if (why) throw new ValeError(Errno.EOPNOTSUPP, `${spec.name}: ${why}`);
}

/** {@link openPort} for a name already parsed with `parsePortName`. */
export function openPortSpec(spec: PortSpec, opts: PortOptions = {}): Port {
  refuseUnsupported(spec);
  return OPENERS[spec.kind](spec, opts);
}

/**
 * Opens a port by name: a switch port or pipe end (`vale0:a`, `vale0:p{1`,
 * created if needed), or a kernel interface (`tap:`, `netmap:`, `xdp:`,
 * `packet:`) as a `KernelPort`. Kernel ports need the privileges of their
 * kernel side (CAP_NET_ADMIN to create a TAP, CAP_NET_RAW for AF_PACKET,
 * CAP_BPF + CAP_NET_ADMIN for AF_XDP; `netmap:` falls back to AF_PACKET
 * without them). Throws `PortNameError` for a malformed name, `ValeError`
 * otherwise.
 */
export function openPort(name: string, opts: PortOptions = {}): Port {
  return openPortSpec(parsePortName(name), opts);
}

/**
 * The same as {@link openPort}, which now opens every kind.
 * @deprecated use openPort; openAnyPort goes in the next release
 */
export const openAnyPort: (name: string, opts?: PortOptions) => Port = openPort;
