/**
 * Port names: the one place where vale turns a string such as `vale0:a`,
 * `netmap:eth0^/x`, `vale0:p{3@conf:rings=2` or `memif:/run/vpp/memif.sock#id=1`
 * into a typed {@link PortSpec}, and back with {@link formatPortName}.
 *
 * The grammar is netmap's (API 14, libnetmap `nmport_parse`) plus vale's own
 * port types. Every syntax error is a {@link PortNameError} whose message is
 * meant to be shown to the user as is.
 *
 * ```
 * valeX:PORT[{ID|}ID][MODE][/FLAGS][@N][@OPTION...]     port of switch valeX
 * netmap:IF[{ID|}ID][MODE][/FLAGS][@N][@OPTION...]      kernel interface (auto method)
 * xdp:IF[MODE][/FLAGS][@N][@OPTION...]                  ... forced AF_XDP
 * packet:IF[MODE][/FLAGS][@N][@OPTION...]               ... forced PACKET_MMAP
 * tap:NAME[/FLAGS][@N][@OPTION...]                      Linux TAP device
 * memif:SOCKET[#KEY=VALUE,...]                          memif (DPDK/VPP) interface
 * pcap:FILE[#KEY=VALUE,...]                             pcap file replay / capture
 *
 * MODE   ^ host rings | ^N one host ring | * NIC and host rings | -N one ring pair
 * FLAGS  x exclusive | z zero-copy monitor | t TX monitor | r RX monitor
 *        R RX rings only | T TX rings only
 * OPTION conf:KEY=N,...  (rings tx-rings rx-rings host-rings host-tx-rings
 *                         host-rx-rings slots tx-slots rx-slots)
 *        share=PORT      (use the memory region of another port)
 * ```
 *
 * @module
 */

/** Longest Linux interface name (IFNAMSIZ − 1); also the limit for VALE port and TAP names. */
export const MAX_IFNAME_LENGTH: number = 15;
/** Longest switch name, `vale` included: the ':' must come within the first 16 characters. */
export const MAX_SWITCH_NAME_LENGTH: number = 15;
/** Longest request name (netmap's `nr_name` minus its NUL): `valeX:PORT{PIPE` or `IF{PIPE`. */
export const MAX_REQUEST_NAME_LENGTH: number = 63;
/** Most rings of one direction (`rings=`, `tx-rings=`, ...). */
export const MAX_RINGS: number = 16;
/** Fewest slots per ring (`slots=`, ...). */
export const MIN_SLOTS: number = 8;
/** Most slots per ring (`slots=`, ...). */
export const MAX_SLOTS: number = 4096;
/** Highest ring index for `-N` and `^N` (netmap: below NETMAP_RING_MASK, 0xfff). */
export const MAX_RING_INDEX: number = 4094;
/** Highest memory region id for `@N` (a 16-bit field in netmap). */
export const MAX_MEM_ID: number = 65535;
/** Longest memif socket path in bytes (`sockaddr_un.sun_path` minus its NUL). */
export const MAX_SOCKET_PATH_BYTES: number = 107;
/** Default snapshot length of a pcap port in `write` / `append` mode. */
export const DEFAULT_PCAP_SNAPLEN: number = 65535;

/** The family a port belongs to; `xdp:` and `packet:` are `netmap` with a forced {@link PortSpec.method}. */
export type PortKind = "vale" | "netmap" | "tap" | "memif" | "pcap" | "vhost";

/**
 * Which rings of the port are bound: `all` (no suffix: every NIC/switch ring),
 * `host` (`^`), `one-host` (`^N`), `nic-host` (`*`), `one-nic` (`-N`).
 */
export type PortMode = "all" | "host" | "one-host" | "nic-host" | "one-nic";

/** How a kernel interface is reached: `auto` (`netmap:`), `xdp` (`xdp:`) or `packet` (`packet:`). */
export type AccessMethod = "auto" | "xdp" | "packet";

/** The `/` flags of a port name. */
export interface PortFlags {
  /** `x`: no other process may open the port while this one has it. */
  exclusive: boolean;
  /** `z`: zero-copy monitor (both directions unless `t` or `r` is also given). */
  zcopyMonitor: boolean;
  /** `t`: copy monitor of the port's TX traffic. */
  txMonitor: boolean;
  /** `r`: copy monitor of the port's RX traffic. */
  rxMonitor: boolean;
  /** `R`: bind the RX rings only. */
  rxOnly: boolean;
  /** `T`: bind the TX rings only. */
  txOnly: boolean;
}

/** Ring and slot counts requested with `@conf:` (or memif `#` settings); absent = default. */
export interface RingConf {
  /** TX rings (`rings=`, `tx-rings=`). */
  txRings?: number;
  /** RX rings (`rings=`, `rx-rings=`). */
  rxRings?: number;
  /** Host TX rings (`host-rings=`, `host-tx-rings=`). */
  hostTxRings?: number;
  /** Host RX rings (`host-rings=`, `host-rx-rings=`). */
  hostRxRings?: number;
  /** Slots per TX ring (`slots=`, `tx-slots=`). */
  txSlots?: number;
  /** Slots per RX ring (`slots=`, `rx-slots=`). */
  rxSlots?: number;
}

/** A pipe endpoint: `X{ID` is the master, `X}ID` the slave of pipe ID of X. */
export interface PipeSpec {
  /** `master` for `{`, `slave` for `}`. */
  role: "master" | "slave";
  /** The pipe identifier (letters, digits, `_`). */
  id: string;
}

/** Settings of a `memif:` port (after `#`). */
export interface MemifOptions {
  /** Interface id on the socket (`id=`, default 0). */
  id: number;
  /** `client` connects to the socket, `server` listens on it (`role=`, default client). */
  role: "client" | "server";
  /** The socket lives in the Linux abstract namespace (the path starts with `@`). */
  abstract: boolean;
  /** Shared secret (`secret=`, at most 24 characters). */
  secret?: string;
  /** Packet buffer size in bytes (`buffer-size=`). */
  bufferSize?: number;
}

/** Settings of a `pcap:` port (after `#`). */
export interface PcapOptions {
  /** `read` replays the file as received frames; `write` / `append` capture sent frames. */
  mode: "read" | "write" | "append";
  /** Read mode: how many times to replay the file, 0 = forever (`loop=`, default 1). */
  loop?: number;
  /** Write / append mode: snapshot length written to the file header (`snaplen=`). */
  snaplen?: number;
}

/** A parsed port name. Produced by {@link parsePortName}; printed by {@link formatPortName}. */
export interface PortSpec {
  /**
   * The port's identity: the name without ring selector, flags or options,
   * prefix included (`vale0:p{3`, `netmap:eth0`, `tap:tap0`, `memif:/run/x.sock`).
   * It is itself a valid port name.
   */
  name: string;
  /** The port family. */
  kind: PortKind;
  /** `vale` only: the switch, `vale` prefix included (`vale0`; `vale` for `vale:0`). */
  switchName?: string;
  /** The port within its family: VALE port, interface, TAP name, socket path or file (no pipe suffix). */
  port: string;
  /** `netmap` and `tap`: the kernel interface name. */
  iface?: string;
  /** Present for a pipe endpoint (`{` / `}`). */
  pipe?: PipeSpec;
  /** Which rings are bound. */
  mode: PortMode;
  /** The ring index for `one-nic` (`-N`) and `one-host` (`^N`). */
  ring?: number;
  /** `@N`: the memory region id. */
  memId?: number;
  /** `@share=PORT`: share the memory region of PORT (its {@link PortSpec.name}). */
  share?: string;
  /** The `/` flags. */
  flags: PortFlags;
  /** `@conf:` ring and slot counts. */
  conf: RingConf;
  /** `netmap` only: how the kernel interface is reached. */
  method?: AccessMethod;
  /** `memif` only. */
  memif?: MemifOptions;
  /** `pcap` only. */
  pcap?: PcapOptions;
  /** `vhost` only: `vhost:PATH` listens on PATH, `vhost-client:PATH` connects to it. */
  vhost?: { client: boolean };
}

/** A malformed port name. `message` is what the user should see. */
export class PortNameError extends Error {
  /** The port name as given. */
  readonly input: string;
  /** The reason alone, without the `invalid port name '...'` prefix. */
  readonly reason: string;
  /** Offset in `input` of the offending character, when one is to blame. */
  readonly position: number | undefined;

  /** Builds `invalid port name '<input>': <reason>`. */
  constructor(input: string, reason: string, position?: number) {
    super(`invalid port name '${printable(input)}': ${reason}`);
    this.name = "PortNameError";
    this.input = input;
    this.reason = reason;
    this.position = position;
  }
}

// ---------------------------------------------------------------------------
// helpers

const FLAG_HELP = "x exclusive, z zero-copy monitor, t TX monitor, r RX monitor, " +
  "R RX rings only, T TX rings only";
const CONF_KEYS = [
  "rings",
  "tx-rings",
  "rx-rings",
  "host-rings",
  "host-tx-rings",
  "host-rx-rings",
  "slots",
  "tx-slots",
  "rx-slots",
];
const MEMIF_KEYS = [
  "id",
  "role",
  "secret",
  "rings",
  "tx-rings",
  "rx-rings",
  "slots",
  "buffer-size",
];
const PCAP_KEYS = ["mode", "loop", "snaplen"];
const PREFIXES =
  "'valeX:', 'netmap:', 'xdp:', 'packet:', 'tap:', 'memif:', 'pcap:', 'vhost:' or 'vhost-client:'";
/** Characters that end a name and start a suffix in the netmap grammar. */
const NAME_END = "{}^*/@";
/** Characters a switch or VALE port name may not hold besides space and control codes: the grammar's. */
const VALE_RESERVED = "/:{}^*@";
/** What a switch or VALE port name may hold, for messages. */
const VALE_CHARS = "allowed: printable ASCII except space and '/', ':', '{', '}', '^', '*', '@'";

function isIdentChar(c: string): boolean {
  return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c === "_";
}

/**
 * A character of a switch name or VALE port name: printable ASCII except space
 * and the grammar's reserved characters. The 2012 VALE took arbitrary strings;
 * these are the ones that are safe as a file name (a switch is a directory),
 * read back unambiguously, and keep listings' columns and byte counts exact
 * (non-ASCII would make netmap's 16-byte limit differ from the character count).
 * c-src/core/switch.c vale_valid_ident checks the same set.
 */
function isValeNameChar(c: string): boolean {
  const cp = c.codePointAt(0)!;
  return cp > 0x20 && cp < 0x7f && !VALE_RESERVED.includes(c);
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

function isControl(cp: number): boolean {
  return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

/** Control characters as \xNN so that a message never carries raw control codes. */
function printable(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += isControl(cp) ? `\\x${cp.toString(16).padStart(2, "0")}` : ch;
  }
  return out;
}

/** A character for a message: `'&'`, `"'"`, `' ' (space)` or `U+0009`. */
function showChar(c: string): string {
  const cp = c.codePointAt(0)!;
  if (isControl(cp)) return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  if (c === "'") return `"'"`;
  if (c === " ") return "' ' (space)";
  return `'${c}'`;
}

function emptyFlags(): PortFlags {
  return {
    exclusive: false,
    zcopyMonitor: false,
    txMonitor: false,
    rxMonitor: false,
    rxOnly: false,
    txOnly: false,
  };
}

interface Setting {
  key: string;
  value: string;
  pos: number;
}

interface NetmapLikeType {
  kind: "vale" | "netmap" | "tap";
  /** The prefix as written before ':' (`vale0`, `netmap`, `xdp`, `packet`, `tap`). */
  prefix: string;
  /** Where the port name starts when not right after `prefix:` (0 for the 2012 `vale-foo`). */
  start?: number;
  method?: AccessMethod;
}

// ---------------------------------------------------------------------------
// the parser

class Parser {
  readonly s: string;
  /** The name is the 2012 form without ':' (a port of switch 'vale'). */
  noColon = false;

  constructor(s: string) {
    this.s = s;
  }

  fail(reason: string, pos?: number): never {
    throw new PortNameError(this.s, reason, pos);
  }

  /** Index of the first character at or after `i` that is in `set`, or the length. */
  scanTo(i: number, set: string): number {
    while (i < this.s.length && !set.includes(this.s[i])) i++;
    return i;
  }

  parse(): PortSpec {
    const s = this.s;
    if (s.length === 0) {
      this.fail("empty name (expected e.g. 'vale0:p1', 'netmap:ens3' or 'tap:tap0')");
    }
    if (s.startsWith("vale")) return this.parseNetmapLike(this.parseSwitchPrefix());
    const colon = s.indexOf(":");
    if (colon < 0) {
      this.fail(
        `a bare interface name is not a port name; write 'netmap:${printable(s)}' ` +
          "for a kernel interface (or use 'xdp:', 'packet:', 'tap:')",
        0,
      );
    }
    const prefix = s.slice(0, colon);
    switch (prefix) {
      case "netmap":
        return this.parseNetmapLike({ kind: "netmap", prefix, method: "auto" });
      case "xdp":
        return this.parseNetmapLike({ kind: "netmap", prefix, method: "xdp" });
      case "packet":
        return this.parseNetmapLike({ kind: "netmap", prefix, method: "packet" });
      case "tap":
        return this.parseNetmapLike({ kind: "tap", prefix });
      case "memif":
        return this.parseMemif(colon + 1);
      case "pcap":
        return this.parsePcap(colon + 1);
      case "vhost":
        return this.parseVhost(colon + 1, false);
      case "vhost-client":
        return this.parseVhost(colon + 1, true);
    }
    if (prefix.startsWith("netmap")) {
      this.fail(`nothing may come between 'netmap' and ':' (got '${printable(prefix)}:')`, 6);
    }
    const lower = prefix.toLowerCase();
    if (
      lower !== prefix &&
      (lower.startsWith("vale") ||
        ["netmap", "xdp", "packet", "tap", "memif", "pcap", "vhost", "vhost-client"].includes(
          lower,
        ))
    ) {
      this.fail(`unknown port type '${printable(prefix)}:' (port types are lower case)`, 0);
    }
    this.fail(`unknown port type '${printable(prefix)}:' (expected ${PREFIXES})`, 0);
  }

  /**
   * The switch of a name starting with `vale`. Two forms, both netmap's: the
   * switch runs from `vale` up to the first ':' (`vale0:a`, `vale:0`, and the
   * 2012 `vale-a:1`); a name with no ':' before its suffixes is a port of the
   * default switch `vale` named by the whole string (2012: `vale-foo`).
   */
  parseSwitchPrefix(): NetmapLikeType {
    const s = this.s;
    let i = 4;
    while (i < s.length && !":{}^*/@".includes(s[i])) i++;
    if (s[i] !== ":") {
      // no ':' before the suffixes: the 2012 default-switch form, unless a ':'
      // follows (before any option), which means a reserved character in a switch name
      const opt = s.indexOf("@", i);
      const colon = s.indexOf(":", i);
      if (i < s.length && colon >= 0 && (opt < 0 || colon < opt)) {
        this.fail(
          `invalid character ${showChar(s[i])} in switch name '${printable(s.slice(0, colon))}' ` +
            `(${VALE_CHARS})`,
          i,
        );
      }
      this.noColon = true;
      return { kind: "vale", prefix: "vale", start: 0 };
    }
    for (let k = 4; k < i; k++) {
      if (!isValeNameChar(s[k])) {
        this.fail(
          `invalid character ${showChar(s[k])} in switch name '${printable(s.slice(0, i))}' ` +
            `(${VALE_CHARS})`,
          k,
        );
      }
    }
    if (i > MAX_SWITCH_NAME_LENGTH) {
      this.fail(
        `switch name '${s.slice(0, i)}' is ${i} characters; at most ${MAX_SWITCH_NAME_LENGTH} ` +
          "are allowed (the ':' must come within the first 16 characters)",
        MAX_SWITCH_NAME_LENGTH,
      );
    }
    return { kind: "vale", prefix: s.slice(0, i) };
  }

  /** valeX:, netmap:, xdp:, packet:, tap: — the netmap grammar. */
  parseNetmapLike(t: NetmapLikeType): PortSpec {
    const s = this.s;
    const start = t.start ?? t.prefix.length + 1;
    const what = t.kind === "vale" ? "port name" : t.kind === "tap" ? "TAP name" : "interface name";
    let i = this.scanTo(start, NAME_END);
    let base = s.slice(start, i);
    let ring: number | undefined;
    let ringText = "";
    let pipe: PipeSpec | undefined;
    let pipePos = 0;

    if (t.kind === "netmap" && s.startsWith("vale", start) && base.includes(":")) {
      this.fail(
        `'${printable(base)}' is a VALE port; write it without the 'netmap:' prefix`,
        start,
      );
    }
    if (s[i] === "{" || s[i] === "}") {
      if (t.kind === "tap") {
        this.fail("pipes ('{', '}') exist only on vale and netmap ports", i);
      }
      if (t.method !== undefined && t.method !== "auto") {
        this.fail(
          `a pipe takes no access method; write 'netmap:${printable(s.slice(start))}'`,
          0,
        );
      }
      this.checkName(base, start, what);
      const role = s[i] === "{" ? "master" : "slave";
      pipePos = i + 1;
      i = this.scanTo(pipePos, NAME_END);
      if (s[i] === "{" || s[i] === "}") {
        this.fail(
          `only one pipe suffix ('{' or '}') is allowed, found a second ${showChar(s[i])}`,
          i,
        );
      }
      const split = this.splitRing(s.slice(pipePos, i), pipePos);
      ring = split.ring;
      ringText = split.ringText;
      if (split.base.length === 0) {
        this.fail(`empty pipe id after '${role === "master" ? "{" : "}"}'`, pipePos);
      }
      for (let k = 0; k < split.base.length; k++) {
        if (!isIdentChar(split.base[k])) {
          this.fail(
            `invalid character ${showChar(split.base[k])} in pipe id '${
              printable(split.base)
            }' (allowed: letters, digits, '_')`,
            pipePos + k,
          );
        }
      }
      pipe = { role, id: split.base };
    } else if (t.kind !== "tap") {
      const split = this.splitRing(base, start);
      base = split.base;
      ring = split.ring;
      ringText = split.ringText;
      this.checkName(base, start, what);
    } else {
      this.checkName(base, start, what);
    }

    // The request name netmap would see: valeX:PORT{ID or IF{ID (at most 63 characters).
    const reqName = (t.kind === "vale" ? `${t.prefix}:` : "") + base +
      (pipe ? (pipe.role === "master" ? "{" : "}") + pipe.id : "");
    if (reqName.length > MAX_REQUEST_NAME_LENGTH) {
      this.fail(
        `'${reqName}' is ${reqName.length} characters; at most ${MAX_REQUEST_NAME_LENGTH} are allowed`,
        pipePos,
      );
    }

    // Ring selector: ^, ^N, *, (-N was taken above).
    let mode: PortMode = ring !== undefined ? "one-nic" : "all";
    let modeText = ringText;
    if (s[i] === "^" || s[i] === "*") {
      const c = s[i];
      if (t.kind === "tap") {
        this.fail(
          `${showChar(c)} selects host rings, which a tap port does not have ` +
            "(the TAP device is the host stack)",
          i,
        );
      }
      if (ring !== undefined) {
        this.fail(
          `${showChar(c)} cannot follow the ring selector '${ringText}' ` +
            "(give one of '^', '^N', '*', '-N')",
          i,
        );
      }
      i++;
      if (c === "*") {
        mode = "nic-host";
        modeText = "*";
      } else if (isDigit(s[i])) {
        const j = this.scanDigits(i);
        ring = this.ringNumber(s.slice(i, j), i);
        mode = "one-host";
        modeText = s.slice(i - 1, j);
        i = j;
      } else {
        mode = "host";
        modeText = "^";
      }
    }
    if (i < s.length && s[i] !== "/" && s[i] !== "@") {
      if (s[i] === "^" || s[i] === "*" || (s[i] === "-" && modeText !== "")) {
        this.fail(
          `${showChar(s[i])} after '${modeText}': give only one of '^', '^N', '*', '-N'`,
          i,
        );
      }
      this.fail(
        `unexpected character ${showChar(s[i])} after '${modeText}' (expected '/', '@' or the end)`,
        i,
      );
    }

    const spec: PortSpec = {
      name: `${t.prefix}:${base}` + (pipe ? (pipe.role === "master" ? "{" : "}") + pipe.id : ""),
      kind: t.kind,
      port: base,
      mode,
      flags: emptyFlags(),
      conf: {},
    };
    if (t.kind === "vale") spec.switchName = t.prefix;
    else spec.iface = base;
    if (pipe) spec.pipe = pipe;
    if (ring !== undefined) spec.ring = ring;
    if (t.method !== undefined) spec.method = t.method;

    this.parseSuffixes(spec, i);
    return spec;
  }

  /** Splits a trailing `-N` (the one-ring-pair selector) off a name segment. */
  splitRing(seg: string, segPos: number): { base: string; ring?: number; ringText: string } {
    const dash = seg.lastIndexOf("-");
    if (dash < 0) return { base: seg, ringText: "" };
    const digits = seg.slice(dash + 1);
    if (digits.length === 0) {
      this.fail(
        "missing ring number after '-' (write '-N' to bind ring pair N)",
        segPos + dash + 1,
      );
    }
    for (const c of digits) if (!isDigit(c)) return { base: seg, ringText: "" };
    // "a-1-0" would be port "a-1", ring 0, whose own name "a-1" reads as port "a", ring 1
    // (and "a--0" port "a-", whose name does not parse): a name ending in '-' or '-N' cannot
    // carry a ring selector, or its identity name would mean another port (found by fuzzing)
    const clash = /-\d*$/.exec(seg.slice(0, dash));
    if (clash) {
      this.fail(
        `'${clash[0]}' before the ring selector '${seg.slice(dash)}': a name that ends in ` +
          "'-' or '-N' cannot take a ring selector (give one '-N')",
        segPos + clash.index,
      );
    }
    return {
      base: seg.slice(0, dash),
      ring: this.ringNumber(digits, segPos + dash + 1),
      ringText: "-" + digits,
    };
  }

  scanDigits(i: number): number {
    while (isDigit(this.s[i])) i++;
    return i;
  }

  ringNumber(digits: string, pos: number): number {
    const n = digits.length > 6 ? Infinity : Number(digits);
    if (n > MAX_RING_INDEX) {
      this.fail(`ring number ${digits} is out of range (0..${MAX_RING_INDEX})`, pos);
    }
    return n;
  }

  /**
   * A VALE port, interface or TAP name, 1..15 characters: interfaces and TAPs
   * [A-Za-z0-9_.-] (the kernel's names), VALE ports any {@link isValeNameChar};
   * all start with a letter, a digit or '_' (not '.', '..', or '-' read as an option).
   */
  checkName(name: string, pos: number, what: string): void {
    if (name.length === 0) {
      const next = this.s[pos];
      this.fail(
        next === undefined || "/@^*{}".includes(next)
          ? `empty ${what}` + (next === undefined ? "" : ` before ${showChar(next)}`)
          : `empty ${what} after ':'`,
        pos,
      );
    }
    const vale = what === "port name";
    for (let k = 0; k < name.length; k++) {
      const c = name[k];
      if (vale ? !isValeNameChar(c) : !isIdentChar(c) && c !== "." && c !== "-") {
        this.fail(
          `invalid character ${showChar(c)} in ${what} '${printable(name)}' ` +
            (vale ? `(${VALE_CHARS})` : "(allowed: letters, digits, '_', '.', '-')"),
          pos + k,
        );
      }
    }
    if (!isIdentChar(name[0])) {
      this.fail(`${what} '${name}' must start with a letter, a digit or '_'`, pos);
    }
    if (name.length > MAX_IFNAME_LENGTH) {
      this.fail(
        `${what} '${name}' is ${name.length} characters; at most ${MAX_IFNAME_LENGTH} are allowed` +
          (pos === 0
            ? " (a name without ':' is a port of switch 'vale' named by the whole name)"
            : ""),
        pos + MAX_IFNAME_LENGTH,
      );
    }
  }

  /** `/FLAGS` and `@N` in any order, then `@OPTION@OPTION...` to the end. */
  parseSuffixes(spec: PortSpec, i: number): void {
    const s = this.s;
    while (i < s.length) {
      if (s[i] === "/") {
        i++;
        if (i === s.length || s[i] === "@" || s[i] === "/") {
          this.fail(`empty flag list after '/' (flags: ${FLAG_HELP})`, i);
        }
        for (; i < s.length && s[i] !== "/" && s[i] !== "@"; i++) this.flag(spec.flags, s[i], i);
      } else if (s[i] === "@") {
        i++;
        if (isDigit(s[i])) {
          const j = this.scanDigits(i);
          this.memId(spec, s.slice(i, j), i);
          if (j < s.length && s[j] !== "/" && s[j] !== "@") {
            this.fail(
              `unexpected character ${showChar(s[j])} after the memory region id ` +
                `'@${s.slice(i, j)}' (expected '/', '@' or the end)`,
              j,
            );
          }
          i = j;
        } else {
          this.parseOptions(spec, i);
          break;
        }
      } else {
        this.fail(`unexpected character ${showChar(s[i])}`, i);
      }
    }
    if (spec.flags.rxOnly && spec.flags.txOnly) {
      this.fail("flags 'R' (RX rings only) and 'T' (TX rings only) exclude each other");
    }
    if (spec.memId !== undefined && spec.share !== undefined) {
      this.fail("'@N' and '@share=' both choose the memory region; give only one");
    }
  }

  flag(f: PortFlags, c: string, pos: number): void {
    switch (c) {
      case "x":
        f.exclusive = true;
        return;
      case "z":
        f.zcopyMonitor = true;
        return;
      case "t":
        f.txMonitor = true;
        return;
      case "r":
        f.rxMonitor = true;
        return;
      case "R":
        f.rxOnly = true;
        return;
      case "T":
        f.txOnly = true;
        return;
    }
    this.fail(`unknown flag ${showChar(c)} (flags: ${FLAG_HELP})`, pos);
  }

  memId(spec: PortSpec, digits: string, pos: number): void {
    const n = digits.length > 6 ? Infinity : Number(digits);
    if (n < 1 || n > MAX_MEM_ID) {
      this.fail(`memory region id ${digits} is out of range (1..${MAX_MEM_ID})`, pos);
    }
    if (spec.memId !== undefined && spec.memId !== n) {
      this.fail(`memory region id set twice ('@${spec.memId}', then '@${digits}')`, pos);
    }
    spec.memId = n;
  }

  /** `@`-separated options from `i` (just past the first '@') to the end. */
  parseOptions(spec: PortSpec, i: number): void {
    const s = this.s;
    for (;;) {
      const end = this.scanTo(i, "@");
      const opt = s.slice(i, end);
      if (opt.length === 0) this.fail("empty option after '@' (expected '@N' or '@conf:...')", i);
      if (/^[0-9]+$/.test(opt)) {
        this.memId(spec, opt, i);
      } else {
        this.option(spec, opt, i);
      }
      if (end === s.length) return;
      i = end + 1;
    }
  }

  option(spec: PortSpec, opt: string, pos: number): void {
    const d = this.scanToIn(opt, ":=");
    const name = opt.slice(0, d);
    const delim = opt[d];
    const body = opt.slice(d + 1);
    const bodyPos = pos + d + 1;
    switch (name) {
      case "conf": {
        if (delim !== ":" || body.length === 0) {
          this.fail(
            "option 'conf' takes settings after ':' (e.g. '@conf:rings=2,slots=1024')",
            pos + d,
          );
        }
        const settings = this.settings(body, bodyPos, "option 'conf'", CONF_KEYS);
        this.applyRingConf(spec.conf, settings, "option 'conf'", false);
        return;
      }
      case "share": {
        let value = body;
        let valuePos = bodyPos;
        if (delim === ":") {
          const set = this.settings(body, bodyPos, "option 'share'", ["port"]);
          value = set[0].value;
          valuePos = set[0].pos;
        } else if (delim !== "=" || body.length === 0) {
          this.fail("option 'share' needs a port name (e.g. '@share=vale0:a')", pos + d);
        }
        let other: PortSpec;
        try {
          other = parsePortName(value);
        } catch (e) {
          if (!(e instanceof PortNameError)) throw e;
          this.fail(
            `option 'share': port '${printable(value)}': ${e.reason}`,
            valuePos + (e.position ?? 0),
          );
        }
        if (other.kind !== "vale" && other.kind !== "netmap") {
          this.fail(`option 'share': '${value}' has no memory region to share`, valuePos);
        }
        if (spec.share !== undefined && spec.share !== other.name) {
          this.fail(`option 'share' given twice ('${spec.share}', then '${other.name}')`, pos);
        }
        spec.share = other.name;
        return;
      }
      case "extmem":
      case "offset":
      case "csb":
      case "kloop":
        this.fail(`option '${name}' is not supported by vale`, pos);
    }
    // 'vale@x:1': the user meant switch 'vale@x', but '@' starts the options
    const hint = this.noColon && delim === ":" ? "; '@' cannot be part of a switch name" : "";
    this.fail(
      `unknown option '${printable(name)}' (options: '@conf:KEY=N,...', '@share=PORT'${hint})`,
      pos,
    );
  }

  scanToIn(str: string, set: string): number {
    let i = 0;
    while (i < str.length && !set.includes(str[i])) i++;
    return i;
  }

  /** `key=value,key=value`; keys may use '_' for '-'; each key at most once. */
  settings(body: string, pos: number, context: string, known: string[]): Setting[] {
    const out: Setting[] = [];
    let i = 0;
    for (;;) {
      let end = body.indexOf(",", i);
      if (end < 0) end = body.length;
      const item = body.slice(i, end);
      if (item.length === 0) {
        this.fail(`empty setting in ${context} (expected KEY=VALUE)`, pos + i);
      }
      const eq = item.indexOf("=");
      const key = (eq < 0 ? item : item.slice(0, eq)).replaceAll("_", "-");
      if (!known.includes(key)) {
        this.fail(
          `unknown key '${printable(key)}' in ${context} (keys: ${known.join(", ")})`,
          pos + i,
        );
      }
      if (eq < 0) this.fail(`missing '=VALUE' after '${key}' in ${context}`, pos + end);
      const value = item.slice(eq + 1);
      if (value.length === 0) this.fail(`empty value for '${key}' in ${context}`, pos + i + eq + 1);
      if (out.some((o) => o.key === key)) {
        this.fail(`'${key}' given twice in ${context}`, pos + i);
      }
      out.push({ key, value, pos: pos + i + eq + 1 });
      if (end === body.length) return out;
      i = end + 1;
    }
  }

  int(set: Setting, min: number, max: number, context: string): number {
    if (!/^[0-9]+$/.test(set.value)) {
      this.fail(
        `'${set.key}' in ${context} must be a whole number, got '${printable(set.value)}'`,
        set.pos,
      );
    }
    const n = set.value.length > 12 ? Infinity : Number(set.value);
    if (n < min || n > max) {
      this.fail(`${set.key}=${set.value} is out of range (${min}..${max})`, set.pos);
    }
    return n;
  }

  /** Applies rings/slots settings; the specific keys win over `rings` / `slots` whatever the order. */
  applyRingConf(conf: RingConf, settings: Setting[], context: string, memif: boolean): void {
    const val = (key: string, min: number, max: number): number | undefined => {
      const set = settings.find((x) => x.key === key);
      if (set === undefined) return undefined;
      const n = this.int(set, min, max, context);
      if (memif && key === "slots" && (n & (n - 1)) !== 0) {
        this.fail(`slots=${set.value} in ${context} must be a power of two`, set.pos);
      }
      return n;
    };
    const rings = val("rings", 1, MAX_RINGS);
    const hostRings = val("host-rings", 1, MAX_RINGS);
    const slots = val("slots", MIN_SLOTS, MAX_SLOTS);
    const tx = val("tx-rings", 1, MAX_RINGS) ?? rings;
    const rx = val("rx-rings", 1, MAX_RINGS) ?? rings;
    const htx = val("host-tx-rings", 1, MAX_RINGS) ?? hostRings;
    const hrx = val("host-rx-rings", 1, MAX_RINGS) ?? hostRings;
    const txs = val("tx-slots", MIN_SLOTS, MAX_SLOTS) ?? slots;
    const rxs = val("rx-slots", MIN_SLOTS, MAX_SLOTS) ?? slots;
    if (tx !== undefined) conf.txRings = tx;
    if (rx !== undefined) conf.rxRings = rx;
    if (htx !== undefined) conf.hostTxRings = htx;
    if (hrx !== undefined) conf.hostRxRings = hrx;
    if (txs !== undefined) conf.txSlots = txs;
    if (rxs !== undefined) conf.rxSlots = rxs;
  }

  /** The part of `memif:` / `pcap:` before '#', and the settings after it. */
  pathAndSettings(
    start: number,
    what: string,
    example: string,
    context: string,
    known: string[],
  ): { path: string; settings: Setting[] } {
    const s = this.s;
    const hash = s.indexOf("#", start);
    const path = hash < 0 ? s.slice(start) : s.slice(start, hash);
    if (path.length === 0) this.fail(`empty ${what} (expected e.g. '${example}')`, start);
    for (let k = 0; k < path.length; k++) {
      if (isControl(path.charCodeAt(k))) {
        this.fail(`invalid character ${showChar(path[k])} in ${what}`, start + k);
      }
    }
    if (hash < 0) return { path, settings: [] };
    if (hash === s.length - 1) {
      this.fail(`empty settings after '#' (expected KEY=VALUE,...)`, hash + 1);
    }
    return { path, settings: this.settings(s.slice(hash + 1), hash + 1, context, known) };
  }

  parseMemif(start: number): PortSpec {
    const context = "memif settings";
    const { path, settings } = this.pathAndSettings(
      start,
      "socket path",
      "memif:/run/vpp/memif.sock",
      context,
      MEMIF_KEYS,
    );
    const bytes = new TextEncoder().encode(path).length;
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      this.fail(
        `socket path is ${bytes} bytes; at most ${MAX_SOCKET_PATH_BYTES} are allowed (sockaddr_un)`,
        start,
      );
    }
    const memif: MemifOptions = { id: 0, role: "client", abstract: path.startsWith("@") };
    for (const set of settings) {
      switch (set.key) {
        case "id":
          memif.id = this.int(set, 0, 0xffffffff, context);
          break;
        case "role": {
          const roles: Record<string, "client" | "server"> = {
            client: "client",
            server: "server",
            slave: "client",
            master: "server",
          };
          const role = roles[set.value];
          if (role === undefined) {
            this.fail(
              `role must be 'client' or 'server', got '${printable(set.value)}'`,
              set.pos,
            );
          }
          memif.role = role;
          break;
        }
        case "secret":
          if (set.value.length > 24) {
            this.fail(
              `secret is ${set.value.length} characters; at most 24 are allowed`,
              set.pos,
            );
          }
          memif.secret = set.value;
          break;
        case "buffer-size":
          memif.bufferSize = this.int(set, 64, 65535, context);
          break;
      }
    }
    const conf: RingConf = {};
    this.applyRingConf(conf, settings, context, true);
    return {
      name: `memif:${path}`,
      kind: "memif",
      port: path,
      mode: "all",
      flags: emptyFlags(),
      conf,
      memif,
    };
  }

  /** `vhost:PATH` (we listen) or `vhost-client:PATH` (we connect): a vhost-user socket. */
  parseVhost(start: number, client: boolean): PortSpec {
    const prefix = client ? "vhost-client" : "vhost";
    const { path } = this.pathAndSettings(start, "socket path", `${prefix}:/run/vm1.sock`, "", []);
    const bytes = new TextEncoder().encode(path).length;
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      this.fail(
        `socket path is ${bytes} bytes; at most ${MAX_SOCKET_PATH_BYTES} are allowed (sockaddr_un)`,
        start,
      );
    }
    if (path.startsWith("@")) this.fail("abstract sockets are not supported for vhost-user", start);
    return {
      name: `${prefix}:${path}`,
      kind: "vhost",
      port: path,
      iface: path,
      mode: "all",
      flags: emptyFlags(),
      conf: {},
      vhost: { client },
    };
  }

  parsePcap(start: number): PortSpec {
    const context = "pcap settings";
    const { path, settings } = this.pathAndSettings(
      start,
      "file name",
      "pcap:trace.pcap",
      context,
      PCAP_KEYS,
    );
    const modeSet = settings.find((x) => x.key === "mode");
    let mode: PcapOptions["mode"] = "read";
    if (modeSet !== undefined) {
      if (modeSet.value !== "read" && modeSet.value !== "write" && modeSet.value !== "append") {
        this.fail(
          `mode must be 'read', 'write' or 'append', got '${printable(modeSet.value)}'`,
          modeSet.pos,
        );
      }
      mode = modeSet.value;
    }
    const pcap: PcapOptions = { mode };
    const loop = settings.find((x) => x.key === "loop");
    const snaplen = settings.find((x) => x.key === "snaplen");
    if (mode === "read") {
      if (snaplen) this.fail("'snaplen' applies to mode=write and mode=append only", snaplen.pos);
      pcap.loop = loop ? this.int(loop, 0, 0xffffffff, context) : 1;
    } else {
      if (loop) this.fail("'loop' applies to mode=read only", loop.pos);
      pcap.snaplen = snaplen ? this.int(snaplen, 64, 262144, context) : DEFAULT_PCAP_SNAPLEN;
    }
    return {
      name: `pcap:${path}`,
      kind: "pcap",
      port: path,
      mode: "all",
      flags: emptyFlags(),
      conf: {},
      pcap,
    };
  }
}

// ---------------------------------------------------------------------------
// public API

/**
 * Parses a port name; throws {@link PortNameError} (message ready for the user) if it is malformed.
 *
 * ```ts
 * parsePortName("vale0:p{3/x").pipe;   // { role: "master", id: "3" }
 * parsePortName("netmap:eth0-1").ring; // 1
 * ```
 */
export function parsePortName(name: string): PortSpec {
  if (typeof name !== "string") {
    throw new TypeError(`port name must be a string, got ${typeof name}`);
  }
  return new Parser(name).parse();
}

function conf(c: RingConf, memif: boolean): string[] {
  const out: string[] = [];
  const pair = (both: string, tx: string, rx: string, t?: number, r?: number) => {
    if (t !== undefined && t === r) out.push(`${both}=${t}`);
    else {
      if (t !== undefined) out.push(`${tx}=${t}`);
      if (r !== undefined) out.push(`${rx}=${r}`);
    }
  };
  pair("rings", "tx-rings", "rx-rings", c.txRings, c.rxRings);
  if (!memif) pair("host-rings", "host-tx-rings", "host-rx-rings", c.hostTxRings, c.hostRxRings);
  pair("slots", "tx-slots", "rx-slots", c.txSlots, c.rxSlots);
  return out;
}

/**
 * The canonical name of a spec (as produced by {@link parsePortName}): flags in the
 * order `xztrRT`, `@N`, `@share=`, then `@conf:` with `rings=` / `slots=` when both
 * directions agree; memif and pcap settings only when not the default.
 * `parsePortName(formatPortName(spec))` gives back an equal spec.
 */
export function formatPortName(spec: PortSpec): string {
  if (spec.kind === "memif") {
    const m = spec.memif ?? { id: 0, role: "client", abstract: false };
    const opts: string[] = [];
    if (m.id !== 0) opts.push(`id=${m.id}`);
    if (m.role !== "client") opts.push(`role=${m.role}`);
    if (m.secret !== undefined) opts.push(`secret=${m.secret}`);
    opts.push(...conf(spec.conf, true));
    if (m.bufferSize !== undefined) opts.push(`buffer-size=${m.bufferSize}`);
    return `memif:${spec.port}` + (opts.length ? "#" + opts.join(",") : "");
  }
  if (spec.kind === "pcap") {
    const p = spec.pcap ?? { mode: "read" };
    const opts: string[] = [];
    if (p.mode !== "read") opts.push(`mode=${p.mode}`);
    if (p.loop !== undefined && p.loop !== 1) opts.push(`loop=${p.loop}`);
    if (p.snaplen !== undefined && p.snaplen !== DEFAULT_PCAP_SNAPLEN) {
      opts.push(`snaplen=${p.snaplen}`);
    }
    return `pcap:${spec.port}` + (opts.length ? "#" + opts.join(",") : "");
  }
  if (spec.kind === "vhost") return `${spec.vhost?.client ? "vhost-client" : "vhost"}:${spec.port}`;
  let out: string;
  if (spec.kind === "vale") out = `${spec.switchName ?? "vale"}:${spec.port}`;
  else if (spec.kind === "tap") out = `tap:${spec.port}`;
  else {out = `${
      spec.method === "xdp" || spec.method === "packet" ? spec.method : "netmap"
    }:${spec.port}`;}
  if (spec.pipe) out += (spec.pipe.role === "master" ? "{" : "}") + spec.pipe.id;
  switch (spec.mode) {
    case "host":
      out += "^";
      break;
    case "one-host":
      out += `^${spec.ring ?? 0}`;
      break;
    case "nic-host":
      out += "*";
      break;
    case "one-nic":
      out += `-${spec.ring ?? 0}`;
      break;
  }
  const f = spec.flags;
  const flags = (f.exclusive ? "x" : "") + (f.zcopyMonitor ? "z" : "") + (f.txMonitor ? "t" : "") +
    (f.rxMonitor ? "r" : "") + (f.rxOnly ? "R" : "") + (f.txOnly ? "T" : "");
  if (flags) out += "/" + flags;
  if (spec.memId !== undefined) out += `@${spec.memId}`;
  if (spec.share !== undefined) out += `@share=${spec.share}`;
  const c = conf(spec.conf, false);
  if (c.length) out += "@conf:" + c.join(",");
  return out;
}

/**
 * The name of a VALE port inside its switch ({@link PortSpec.switchName}): the port,
 * plus the pipe suffix for a pipe endpoint. `vale0:p{3/x` → `p{3`, `vale0:p}3` → `p}3`,
 * `vale0:a-1` → `a`. Throws {@link PortNameError} for a port that is not on a switch.
 */
export function switchPortKey(spec: PortSpec): string {
  if (spec.kind !== "vale") {
    throw new PortNameError(
      spec.name,
      `a ${spec.kind} port is not on a switch (expected 'valeX:PORT')`,
    );
  }
  return spec.port + (spec.pipe ? (spec.pipe.role === "master" ? "{" : "}") + spec.pipe.id : "");
}

/**
 * The spec {@link parsePortName} returns for pipe end `valeX:PORT{ID` (master)
 * or `valeX:PORT}ID` (slave) with ring counts `conf`, built without a string
 * round trip, for ports the library names itself (the private pipes of
 * kernel ports). The parts must be valid: they are not checked here.
 */
export function switchPipeSpec(
  switchName: string,
  port: string,
  role: PipeSpec["role"],
  id: string,
  conf: RingConf = {},
): PortSpec {
  return {
    name: `${switchName}:${port}${role === "master" ? "{" : "}"}${id}`,
    kind: "vale",
    switchName,
    port,
    pipe: { role, id },
    mode: "all",
    flags: emptyFlags(),
    conf,
  };
}

/** What `vale-ctl -a` / `-h` / `-d` name: a switch and the interface put on it as a port. */
export interface AttachSpec {
  /** The switch (`vale0`). */
  switchName: string;
  /** The port on the switch: the interface's (or TAP's) name. */
  port: string;
  /** With `valeX:tap:NAME`, `valeX:netmap:IF`, `xdp:`, `packet:`: the kernel port named. */
  kernel?: PortSpec;
}

/**
 * The switch port of a vhost-user attachment: named after the socket file
 * (`/run/vm1.sock` → `vm1.sock`), which must be a valid port name of at most
 * 15 characters.
 */
function vhostPortName(name: string, kernel: PortSpec): string {
  const base = kernel.port.slice(kernel.port.lastIndexOf("/") + 1);
  let ok = base.length > 0 && base.length < VALE_NAME_CHARS + 1;
  if (ok) {
    try {
      ok = parsePortName(`vale0:${base}`).port === base;
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    throw new PortNameError(
      name,
      `the switch port is named after the socket file, and '${printable(base)}' is not a ` +
        `port name of 1..${VALE_NAME_CHARS} characters: rename the socket`,
    );
  }
  return base;
}

/** Longest switch port name (VALE_NAME_MAX in vale.h minus the NUL). */
const VALE_NAME_CHARS = 15;

/**
 * Parses an attachment name: `valeX:IF` (an interface, or a persistent port),
 * or `valeX:` followed by a kernel port name without suffixes (`tap:NAME`,
 * `netmap:IF`, `xdp:IF`, `packet:IF`). `valeX:IF` must itself be a plain
 * switch port name. Throws {@link PortNameError}.
 */
export function parseAttachName(name: string): AttachSpec {
  if (typeof name !== "string") {
    throw new TypeError(`port name must be a string, got ${typeof name}`);
  }
  const colon = name.indexOf(":");
  const switchName = colon < 0 ? name : name.slice(0, colon);
  const rest = colon < 0 ? "" : name.slice(colon + 1);
  // the switch: as in any switch port name
  if (parsePortName(`${switchName}:p`).kind !== "vale") {
    throw new PortNameError(name, `'${printable(switchName)}' is not a switch (valeX)`, 0);
  }
  // the interface: a kernel port name, or a bare interface name (no ring
  // selector: '-' is part of an interface name, as in TAP names)
  const kernel = parsePortName(rest.includes(":") ? rest : `tap:${rest}`);
  if (kernel.kind === "vhost") return { switchName, port: vhostPortName(name, kernel), kernel };
  const plain = (kernel.kind === "tap" || kernel.kind === "netmap") && !kernel.pipe &&
    formatPortName(kernel) === kernel.name;
  if (!plain) {
    throw new PortNameError(
      name,
      `'${printable(rest)}' is not an interface name (nor tap:, netmap:, xdp:, packet: one)`,
      colon + 1,
    );
  }
  const port = kernel.iface!;
  return rest.includes(":") ? { switchName, port, kernel } : { switchName, port };
}

/**
 * Is `name` a switch name as a port name writes it before its ':' (`vale0`,
 * `vale`, the 2012 `vale-a`)? `vale` followed by at most 11 printable ASCII
 * characters other than space and `/ : { } ^ * @`. Internal switches (the
 * holding switch of unattached persistent ports) have names that are not.
 */
export function isSwitchName(name: string): boolean {
  if (typeof name !== "string" || !name.startsWith("vale")) return false;
  if (name.length > MAX_SWITCH_NAME_LENGTH) return false;
  for (let k = 4; k < name.length; k++) if (!isValeNameChar(name[k])) return false;
  return true;
}
