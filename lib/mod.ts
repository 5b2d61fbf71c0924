/**
 * vale: a very fast Virtual Local Ethernet in user space — netmap's VALE
 * switch without a kernel module. Ports of a switch live in shared memory;
 * forwarding runs in the sender.
 *
 * ```ts
 * import { openPort } from "@vale/vale";
 * using a = openPort("vale0:a");
 * using b = openPort("vale0:b");
 * a.send(frame);
 * a.txsync();
 * const got = await b.receive();
 * ```
 *
 * @module
 */
export { openAnyPort, openPort, type PortOptions } from "./open.ts";
export { type OpenOptions, Port, type PortCounters } from "./switch/port.ts";
export type { VnetSettings } from "./switch/open_request.ts";
export { BUF_SIZE, MAX_FRAGS, Ring, SlotFlags } from "./switch/ring.ts";
export { ValeError } from "./errors.ts";
export {
  formatPortName,
  isSwitchName,
  parsePortName,
  PortNameError,
  type PortSpec,
  switchPortKey,
} from "./names.ts";
export {
  configLookup,
  type ControlOptions,
  createPersistentPort,
  listSwitches,
  type MacEntry,
  MAX_BATCH,
  type MonitorInfo,
  portCounters,
  type PortInfo,
  reap,
  removePort,
  removeSwitch,
  setBatch,
  setLookup,
  setPortInfo,
  setPortVnet,
  type SwitchInfo,
  switchInfo,
} from "./switch/control.ts";
export { DEFAULT_RUN_DIR, runDir } from "./rundir.ts";
export { KernelPort } from "./backends/kernel_port.ts";
export {
  attachInterface,
  type Attachment,
  type AttachOptions,
  detachInterface,
  type KfastState,
  listAttachments,
} from "./attach/attach.ts";
export { KernelFastPath, type KfastStats } from "./backends/kfast.ts";
export { PktGen, type PktGenConf } from "./tools/pktgen.ts";
export {
  type PortRates,
  type SortKey,
  sortPorts,
  type SwitchRates,
  TopSampler,
  type TopSnapshot,
} from "./tools/top.ts";
export { Topology, type TopologyUpOptions } from "./topo/topology.ts";
export {
  type CounterSnapshot,
  Network,
  openTopology,
  type PingAllResult,
  type PingResult,
  type PktGenResult,
  type TcpResult,
  type TopologyStatus,
} from "./topo/network.ts";
export { Host, type HostInterface, type SpawnOptions } from "./topo/host.ts";
export {
  type HostLinkSpec,
  type HostSpec,
  type LinkSpec,
  type RouteSpec,
  type SwitchLinkSpec,
  type SwitchSpec,
  TopologyError,
  type TopologySpec,
  validateTopology,
  type VmLinkSpec,
  type VmSpec,
} from "./topo/spec.ts";
export { Vm, type VmInterface } from "./topo/vm.ts";
export type { RunOptions, RunResult } from "./topo/sys.ts";
export type { UpOptions } from "./topo/lifecycle.ts";
export { Replay, type ReplayOptions, type ReplayStats } from "./tools/replay.ts";
