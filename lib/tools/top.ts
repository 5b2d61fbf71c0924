/**
 * What `vale top` shows, without the terminal: snapshots of one or all
 * switches turned into per-port rates (packets and bits per second each
 * way, drops per second by reason) from the difference of two readings of
 * the switch's counters, plus ring occupancy, owner, kind and MAC table size.
 * The counters are the switch's own (vale_switch_json), so the rates are
 * exact over the measured interval.
 *
 * @module
 */
import { listSwitches, type PortInfo, switchInfo } from "../switch/control.ts";

/** One port's rates over the last interval, and its state now. */
export interface PortRates {
  /** Name inside the switch. */
  name: string;
  /** port, persistent, pipe, or what serves it (an attachment's interface and method). */
  kind: string;
  /** Process that has it open (0: none). */
  owner_pid: number;
  /** Frames and bits per second delivered to the port. */
  rx_pps: number;
  rx_bps: number;
  /** Frames and bits per second the port sent into the switch. */
  tx_pps: number;
  tx_bps: number;
  /** Drops per second over the interval, all reasons. */
  drops_ps: number;
  /** Drops since the port was created, by reason (the switch's counters). */
  drops: Record<string, number>;
  /** Frames waiting in its RX rings, and what the rings hold. */
  rx_queued: number;
  rx_room: number;
  /** Totals since the port was created. */
  rx_packets: number;
  tx_packets: number;
}

/** One switch in a snapshot. */
export interface SwitchRates {
  name: string;
  lookup: string;
  /** Entries in the learning table. */
  macs: number;
  ports: PortRates[];
  /** Set when the switch could not be read (e.g. damaged or removed). */
  error?: string;
}

/** One refresh of `vale top`. */
export interface TopSnapshot {
  /** Wall clock, ISO 8601. */
  time: string;
  /** Seconds the rates are measured over (0 for the first snapshot: no rates yet). */
  interval_s: number;
  switches: SwitchRates[];
}

/** Sort orders of the port list. */
export const SORT_KEYS = ["pps", "bps", "drops", "queue", "name"] as const;
export type SortKey = typeof SORT_KEYS[number];

function kindOf(p: PortInfo): string {
  if (p.fwd_pid && p.info) return p.info.trim();
  if (p.pipe) return "pipe";
  if (p.persistent) return "persistent";
  return "port";
}

function dropsTotal(d: Record<string, number>): number {
  return Object.values(d).reduce((a, b) => a + b, 0);
}

interface Reading {
  rx_p: number;
  rx_b: number;
  tx_p: number;
  tx_b: number;
  drops: number;
}

/** Reads switches and turns successive readings into rates. */
export class TopSampler {
  #last = new Map<string, Reading>();
  #lastT = 0;

  /**
   * @param switches the switches to watch; empty: all, as they come and go.
   * @param runDir the run directory (default $VALE_RUN_DIR or /dev/shm/vale).
   */
  constructor(readonly switches: string[] = [], readonly runDir?: string) {}

  /** Read the switches now; rates are over the time since the previous call. */
  sample(): TopSnapshot {
    const now = performance.now();
    const dt = this.#lastT ? (now - this.#lastT) / 1000 : 0;
    this.#lastT = now;
    const names = this.switches.length ? this.switches : listSwitches({ runDir: this.runDir });
    const seen = new Map<string, Reading>();
    const out: SwitchRates[] = [];
    for (const sw of names) {
      let info;
      try {
        info = switchInfo(sw, { runDir: this.runDir });
      } catch (e) {
        out.push({ name: sw, lookup: "", macs: 0, ports: [], error: (e as Error).message });
        continue;
      }
      const ports = info.ports.map((p): PortRates => {
        const c = p.counters;
        // an index reused by a new port (new generation) starts from zero
        const key = `${sw}\0${p.index}\0${p.gen}`;
        const r: Reading = {
          rx_p: c.rx_packets,
          rx_b: c.rx_bytes,
          tx_p: c.tx_packets,
          tx_b: c.tx_bytes,
          drops: dropsTotal(c.drops),
        };
        seen.set(key, r);
        const o = this.#last.get(key);
        const rate = (a: number, b: number | undefined) =>
          dt > 0 && b !== undefined && a >= b ? (a - b) / dt : 0;
        return {
          name: p.name,
          kind: kindOf(p),
          owner_pid: p.in_use ? p.owner_pid : 0,
          rx_pps: rate(r.rx_p, o?.rx_p),
          rx_bps: rate(r.rx_b, o?.rx_b) * 8,
          tx_pps: rate(r.tx_p, o?.tx_p),
          tx_bps: rate(r.tx_b, o?.tx_b) * 8,
          drops_ps: rate(r.drops, o?.drops),
          drops: { ...c.drops },
          rx_queued: p.rx_queued ?? 0,
          rx_room: p.rx_room ?? 0,
          rx_packets: c.rx_packets,
          tx_packets: c.tx_packets,
        };
      });
      out.push({
        name: info.name,
        lookup: info.lookup,
        macs: info.macs.filter((m) => !m.expired).length,
        ports,
      });
    }
    this.#last = seen;
    return { time: new Date().toISOString(), interval_s: dt, switches: out };
  }
}

/** Sort ports in place: busiest (or most dropping, fullest) first; names A to Z. */
export function sortPorts(ports: PortRates[], key: SortKey, reverse = false): PortRates[] {
  const val = (p: PortRates): number =>
    key === "pps"
      ? p.rx_pps + p.tx_pps
      : key === "bps"
      ? p.rx_bps + p.tx_bps
      : key === "drops"
      ? p.drops_ps * 1e12 + dropsTotal(p.drops) // rate first, then totals
      : key === "queue"
      ? p.rx_queued
      : 0;
  ports.sort((a, b) => {
    const d = key === "name" ? a.name.localeCompare(b.name) : val(b) - val(a);
    return (reverse ? -d : d) || a.name.localeCompare(b.name);
  });
  return ports;
}

/** 1234567 -> "1.23M", as top and netmap's tools print rates. */
export function si(v: number): string {
  const a = Math.abs(v);
  if (a < 1000) return a === Math.floor(a) ? String(v) : v.toFixed(1);
  for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]] as const) {
    if (a >= d) return `${(v / d).toFixed(a / d >= 100 ? 0 : a / d >= 10 ? 1 : 2)}${s}`;
  }
  return String(v);
}
