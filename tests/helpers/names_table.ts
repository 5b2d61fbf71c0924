// The port-name table: valid names with their specs and canonical forms, invalid names with
// the exact message. Used by names_test.ts and, as the seed corpus, by tests/fuzz/.
import assert from "node:assert/strict";
import type { PortFlags, PortSpec } from "../../lib/names.ts";

/** Flags from netmap's letters: "xT" → exclusive + txOnly. */
function flags(letters = ""): PortFlags {
  for (const c of letters) assert.ok("xztrRT".includes(c), `bad flag letter ${c} in test`);
  return {
    exclusive: letters.includes("x"),
    zcopyMonitor: letters.includes("z"),
    txMonitor: letters.includes("t"),
    rxMonitor: letters.includes("r"),
    rxOnly: letters.includes("R"),
    txOnly: letters.includes("T"),
  };
}

type SpecInit = Omit<PortSpec, "mode" | "flags" | "conf"> & {
  mode?: PortSpec["mode"];
  flags?: string;
  conf?: PortSpec["conf"];
};

/** A full spec: defaults for mode, flags and conf; everything else as given. */
function mk(init: SpecInit): PortSpec {
  const { flags: f, ...rest } = init;
  return { mode: "all", conf: {}, ...rest, flags: flags(f) };
}

/** valeX:PORT spec. */
function vale(sw: string, port: string, extra: Partial<SpecInit> = {}): PortSpec {
  const pipe = extra.pipe ? (extra.pipe.role === "master" ? "{" : "}") + extra.pipe.id : "";
  return mk({ name: `${sw}:${port}${pipe}`, kind: "vale", switchName: sw, port, ...extra });
}

/** netmap:/xdp:/packet: IF spec. */
function nic(iface: string, extra: Partial<SpecInit> = {}, prefix = "netmap"): PortSpec {
  const pipe = extra.pipe ? (extra.pipe.role === "master" ? "{" : "}") + extra.pipe.id : "";
  const method = prefix === "netmap" ? "auto" : prefix as "xdp" | "packet";
  return mk({
    name: `${prefix}:${iface}${pipe}`,
    kind: "netmap",
    port: iface,
    iface,
    method,
    ...extra,
  });
}

export interface Valid {
  input: string;
  spec: PortSpec;
  /** formatPortName's output when it differs from the input. */
  canonical?: string;
}

export interface Invalid {
  input: string;
  /** The full message the user sees. */
  error: string;
  /** The offending character's offset, when the test pins it. */
  position?: number;
}

const E = (input: string, reason: string) => `invalid port name '${input}': ${reason}`;
const FLAG_HELP = "flags: x exclusive, z zero-copy monitor, t TX monitor, r RX monitor, " +
  "R RX rings only, T TX rings only";
const CONF_KEYS = "rings, tx-rings, rx-rings, host-rings, host-tx-rings, host-rx-rings, " +
  "slots, tx-slots, rx-slots";
const OPTIONS = "options: '@conf:KEY=N,...', '@share=PORT'";
const CHARS = "allowed: letters, digits, '_', '.', '-'";
/** What switch and VALE port names may hold (arbitrary in 2012 VALE; file-name safe here). */
const VCHARS = "allowed: printable ASCII except space and '/', ':', '{', '}', '^', '*', '@'";
const WHOLE = "(a name without ':' is a port of switch 'vale' named by the whole name)";

export const VALID: Valid[] = [
  // --- netmap's table, valid rows ---
  { input: "netmap:nic0", spec: nic("nic0") },
  { input: "netmap:nic0-1", spec: nic("nic0", { mode: "one-nic", ring: 1 }) },
  { input: "netmap:nic0/x", spec: nic("nic0", { flags: "x" }) },
  { input: "netmap:nic0/z", spec: nic("nic0", { flags: "z" }) },
  { input: "netmap:nic0/r", spec: nic("nic0", { flags: "r" }) },
  { input: "netmap:nic0/t", spec: nic("nic0", { flags: "t" }) },
  {
    input: "netmap:nic0-2/Tx",
    spec: nic("nic0", { mode: "one-nic", ring: 2, flags: "xT" }),
    canonical: "netmap:nic0-2/xT",
  },
  { input: "netmap:nic0*", spec: nic("nic0", { mode: "nic-host" }) },
  { input: "netmap:nic0^", spec: nic("nic0", { mode: "host" }) },
  { input: "netmap:nic0@2", spec: nic("nic0", { memId: 2 }) },
  {
    input: "netmap:nic0@2/R",
    spec: nic("nic0", { memId: 2, flags: "R" }),
    canonical: "netmap:nic0/R@2",
  },
  {
    input: "netmap:nic0@2/R@2",
    spec: nic("nic0", { memId: 2, flags: "R" }),
    canonical: "netmap:nic0/R@2",
  },
  { input: "vale0:0", spec: vale("vale0", "0") },
  { input: "vale:0", spec: vale("vale", "0") },
  { input: "valeXXX:YYY", spec: vale("valeXXX", "YYY") },
  { input: "valeXXX:YYY-4", spec: vale("valeXXX", "YYY", { mode: "one-nic", ring: 4 }) },
  { input: "netmap:14", spec: nic("14") },
  { input: "netmap:pipe{0", spec: nic("pipe", { pipe: { role: "master", id: "0" } }) },
  { input: "netmap:pipe{in", spec: nic("pipe", { pipe: { role: "master", id: "in" } }) },
  {
    input: "netmap:pipe{in-7",
    spec: nic("pipe", { pipe: { role: "master", id: "in" }, mode: "one-nic", ring: 7 }),
  },
  { input: "vale0:0{0", spec: vale("vale0", "0", { pipe: { role: "master", id: "0" } }) },
  {
    input: "vale0:0/Tx@conf:rings=2",
    spec: vale("vale0", "0", { flags: "xT", conf: { txRings: 2, rxRings: 2 } }),
    canonical: "vale0:0/xT@conf:rings=2",
  },
  {
    input: "vale0:0-3@conf:slots=512",
    spec: vale("vale0", "0", { mode: "one-nic", ring: 3, conf: { txSlots: 512, rxSlots: 512 } }),
  },
  // --- more modes, pipes and flags ---
  { input: "netmap:nic0^1", spec: nic("nic0", { mode: "one-host", ring: 1 }) },
  { input: "netmap:nic0*/x", spec: nic("nic0", { mode: "nic-host", flags: "x" }) },
  { input: "vale0:p{3", spec: vale("vale0", "p", { pipe: { role: "master", id: "3" } }) },
  {
    input: "vale0:p}3/x",
    spec: vale("vale0", "p", { pipe: { role: "slave", id: "3" }, flags: "x" }),
  },
  { input: "netmap:nic0{1", spec: nic("nic0", { pipe: { role: "master", id: "1" } }) },
  { input: "vale0:v0/z", spec: vale("vale0", "v0", { flags: "z" }) },
  {
    input: "vale0:v0/rt/x",
    spec: vale("vale0", "v0", { flags: "trx" }),
    canonical: "vale0:v0/xtr",
  },
  { input: "vale_1:port_2", spec: vale("vale_1", "port_2") },
  { input: "valeABCDEFGHIJK:a", spec: vale("valeABCDEFGHIJK", "a") }, // ':' is the 16th character
  { input: "vale0:abcdefghijklmno", spec: vale("vale0", "abcdefghijklmno") }, // 15 characters
  { input: "netmap:nic0-4094", spec: nic("nic0", { mode: "one-nic", ring: 4094 }) },
  { input: "vale0:a@65535", spec: vale("vale0", "a", { memId: 65535 }) },
  // --- kernel interface names with '.' and '-' (a trailing -N still selects a ring) ---
  { input: "netmap:nic0.100", spec: nic("nic0.100") },
  { input: "netmap:br-lan", spec: nic("br-lan") },
  { input: "netmap:br-lan-2", spec: nic("br-lan", { mode: "one-nic", ring: 2 }) },
  { input: "vale0:veth-a", spec: vale("vale0", "veth-a") },
  // --- forced access methods ---
  { input: "xdp:nic0", spec: nic("nic0", {}, "xdp") },
  { input: "packet:nic0^", spec: nic("nic0", { mode: "host" }, "packet") },
  { input: "xdp:veth1-0/R", spec: nic("veth1", { mode: "one-nic", ring: 0, flags: "R" }, "xdp") },
  // --- @conf and @share ---
  {
    input: "vale0:a@conf:tx-rings=2,rx_rings=4,slots=2048",
    spec: vale("vale0", "a", { conf: { txRings: 2, rxRings: 4, txSlots: 2048, rxSlots: 2048 } }),
    canonical: "vale0:a@conf:tx-rings=2,rx-rings=4,slots=2048",
  },
  {
    input: "vale0:a@conf:tx-slots=64,slots=128",
    spec: vale("vale0", "a", { conf: { txSlots: 64, rxSlots: 128 } }),
    canonical: "vale0:a@conf:tx-slots=64,rx-slots=128",
  },
  {
    input: "netmap:nic0^@conf:host-rings=2",
    spec: nic("nic0", { mode: "host", conf: { hostTxRings: 2, hostRxRings: 2 } }),
  },
  {
    input: "vale0:a@conf:rings=16,slots=8@conf:rings=1",
    spec: vale("vale0", "a", { conf: { txRings: 1, rxRings: 1, txSlots: 8, rxSlots: 8 } }),
    canonical: "vale0:a@conf:rings=1,slots=8",
  },
  { input: "vale0:a@share=vale1:b", spec: vale("vale0", "a", { share: "vale1:b" }) },
  {
    input: "vale0:a@share:port=netmap:nic0^",
    spec: vale("vale0", "a", { share: "netmap:nic0" }),
    canonical: "vale0:a@share=netmap:nic0",
  },
  // --- tap ---
  { input: "tap:tap0", spec: mk({ name: "tap:tap0", kind: "tap", port: "tap0", iface: "tap0" }) },
  {
    input: "tap:vm-1/x@conf:slots=256",
    spec: mk({
      name: "tap:vm-1",
      kind: "tap",
      port: "vm-1",
      iface: "vm-1",
      flags: "x",
      conf: { txSlots: 256, rxSlots: 256 },
    }),
  },
  // --- memif ---
  {
    input: "memif:/run/vpp/memif.sock",
    spec: mk({
      name: "memif:/run/vpp/memif.sock",
      kind: "memif",
      port: "/run/vpp/memif.sock",
      memif: { id: 0, role: "client", abstract: false },
    }),
  },
  {
    input: "memif:/tmp/m 1.sock#id=7,role=master,secret=s3cr3t,rings=2,slots=1024,buffer-size=4096",
    spec: mk({
      name: "memif:/tmp/m 1.sock",
      kind: "memif",
      port: "/tmp/m 1.sock",
      conf: { txRings: 2, rxRings: 2, txSlots: 1024, rxSlots: 1024 },
      memif: { id: 7, role: "server", abstract: false, secret: "s3cr3t", bufferSize: 4096 },
    }),
    canonical: "memif:/tmp/m 1.sock#id=7,role=server,secret=s3cr3t,rings=2,slots=1024," +
      "buffer-size=4096",
  },
  {
    input: "memif:@vpp/memif#role=client,id=0",
    spec: mk({
      name: "memif:@vpp/memif",
      kind: "memif",
      port: "@vpp/memif",
      memif: { id: 0, role: "client", abstract: true },
    }),
    canonical: "memif:@vpp/memif",
  },
  // --- vhost-user ---
  {
    input: "vhost:/run/vm1.sock",
    spec: mk({
      name: "vhost:/run/vm1.sock",
      kind: "vhost",
      port: "/run/vm1.sock",
      iface: "/run/vm1.sock",
      vhost: { client: false },
    }),
  },
  {
    input: "vhost-client:/tmp/q emu.sock",
    spec: mk({
      name: "vhost-client:/tmp/q emu.sock",
      kind: "vhost",
      port: "/tmp/q emu.sock",
      iface: "/tmp/q emu.sock",
      vhost: { client: true },
    }),
  },
  // --- pcap ---
  {
    input: "pcap:trace.pcap",
    spec: mk({
      name: "pcap:trace.pcap",
      kind: "pcap",
      port: "trace.pcap",
      pcap: { mode: "read", loop: 1 },
    }),
  },
  {
    input: "pcap:trace.pcap#loop=0",
    spec: mk({
      name: "pcap:trace.pcap",
      kind: "pcap",
      port: "trace.pcap",
      pcap: { mode: "read", loop: 0 },
    }),
  },
  {
    input: "pcap:-#mode=write",
    spec: mk({ name: "pcap:-", kind: "pcap", port: "-", pcap: { mode: "write", snaplen: 65535 } }),
  },
  {
    input: "pcap:/var/tmp/out@1.pcap#snaplen=128,mode=append",
    spec: mk({
      name: "pcap:/var/tmp/out@1.pcap",
      kind: "pcap",
      port: "/var/tmp/out@1.pcap",
      pcap: { mode: "append", snaplen: 128 },
    }),
    canonical: "pcap:/var/tmp/out@1.pcap#mode=append,snaplen=128",
  },
  // --- 2012 VALE names (vale(4) of the seeds): switch = 'vale' up to the first ':' ---
  { input: "vale-a:1", spec: vale("vale-a", "1") },
  { input: "vale-a:0", spec: vale("vale-a", "0") },
  { input: "vale-1:a", spec: vale("vale-1", "a") },
  { input: "vale-0:a", spec: vale("vale-0", "a") },
  { input: "vale.b:x", spec: vale("vale.b", "x") },
  { input: "vale_0:a.b-c", spec: vale("vale_0", "a.b-c") },
  { input: "vale+x:a&b", spec: vale("vale+x", "a&b") },
  { input: "vale-a:b'c\"d", spec: vale("vale-a", "b'c\"d") },
  { input: "vale-persistent:a", spec: vale("vale-persistent", "a") }, // a user's switch now
  { input: "vale-abcdefghij:a", spec: vale("vale-abcdefghij", "a") }, // 15, ':' 16th
  { input: "vale-a:1-2", spec: vale("vale-a", "1", { mode: "one-nic", ring: 2 }) },
  { input: "vale-a:p{3", spec: vale("vale-a", "p", { pipe: { role: "master", id: "3" } }) },
  // monitor suffixes (/r /t /rt /z) as on any port
  { input: "vale-a:1/r", spec: vale("vale-a", "1", { flags: "r" }) },
  { input: "vale-a:1/t", spec: vale("vale-a", "1", { flags: "t" }) },
  { input: "vale-a:1/rt", spec: vale("vale-a", "1", { flags: "rt" }), canonical: "vale-a:1/tr" },
  { input: "vale-a:1/z", spec: vale("vale-a", "1", { flags: "z" }) },
  // --- 2012: no ':' = a port of switch 'vale' named by the whole string ---
  { input: "vale-foo", spec: vale("vale", "vale-foo"), canonical: "vale:vale-foo" },
  { input: "vale-bar", spec: vale("vale", "vale-bar"), canonical: "vale:vale-bar" },
  { input: "vale:vale-foo", spec: vale("vale", "vale-foo") }, // the same port, modern form
  { input: "vale0", spec: vale("vale", "vale0"), canonical: "vale:vale0" },
  { input: "vale", spec: vale("vale", "vale"), canonical: "vale:vale" },
  {
    input: "valeabcdefghijk",
    spec: vale("vale", "valeabcdefghijk"),
    canonical: "vale:valeabcdefghijk",
  },
  {
    input: "vale-foo/x",
    spec: vale("vale", "vale-foo", { flags: "x" }),
    canonical: "vale:vale-foo/x",
  },
  {
    input: "vale-foo/rt",
    spec: vale("vale", "vale-foo", { flags: "rt" }),
    canonical: "vale:vale-foo/tr",
  },
  {
    // a trailing -N keeps netmap's meaning (ring pair N), as in 'vale:vale-foo-1'
    input: "vale-foo-1",
    spec: vale("vale", "vale-foo", { mode: "one-nic", ring: 1 }),
    canonical: "vale:vale-foo-1",
  },
  {
    input: "vale-1",
    spec: vale("vale", "vale", { mode: "one-nic", ring: 1 }),
    canonical: "vale:vale-1",
  },
  {
    input: "vale-foo{1",
    spec: vale("vale", "vale-foo", { pipe: { role: "master", id: "1" } }),
    canonical: "vale:vale-foo{1",
  },
  {
    input: "vale-foo@conf:rings=2",
    spec: vale("vale", "vale-foo", { conf: { txRings: 2, rxRings: 2 } }),
    canonical: "vale:vale-foo@conf:rings=2",
  },
  {
    input: "vale-foo@2",
    spec: vale("vale", "vale-foo", { memId: 2 }),
    canonical: "vale:vale-foo@2",
  },
];

export const INVALID: Invalid[] = [
  // --- found by tests/fuzz/: the identity name of these would be another port ---
  {
    input: "xdp:veth1-01-0/R",
    error: E(
      "xdp:veth1-01-0/R",
      "'-01' before the ring selector '-0': a name that ends in '-' or '-N' cannot take a " +
        "ring selector (give one '-N')",
    ),
    position: 9,
  },
  {
    input: "netmap:br-lan--12",
    error: E(
      "netmap:br-lan--12",
      "'-' before the ring selector '-12': a name that ends in '-' or '-N' cannot take a " +
        "ring selector (give one '-N')",
    ),
    position: 13,
  },
  // --- netmap's table, invalid rows (and rows whose '@...' suffix vale rejects) ---
  {
    input: "netmap:nic0-",
    error: E("netmap:nic0-", "missing ring number after '-' (write '-N' to bind ring pair N)"),
    position: 12,
  },
  {
    input: "netmap:nic0@2/R@3",
    error: E("netmap:nic0@2/R@3", "memory region id set twice ('@2', then '@3')"),
    position: 16,
  },
  {
    input: "netmap:nic0@",
    error: E("netmap:nic0@", "empty option after '@' (expected '@N' or '@conf:...')"),
  },
  { input: "netmap:", error: E("netmap:", "empty interface name"), position: 7 },
  { input: "netmap:^", error: E("netmap:^", "empty interface name before '^'") },
  { input: "netmap:{", error: E("netmap:{", "empty interface name before '{'") },
  {
    input: "netmap:vale0:0",
    error: E("netmap:vale0:0", "'vale0:0' is a VALE port; write it without the 'netmap:' prefix"),
  },
  {
    input: "nic0",
    error: E(
      "nic0",
      "a bare interface name is not a port name; write 'netmap:nic0' for a kernel interface " +
        "(or use 'xdp:', 'packet:', 'tap:')",
    ),
  },
  {
    input: "netmapXXX:nic0",
    error: E("netmapXXX:nic0", "nothing may come between 'netmap' and ':' (got 'netmapXXX:')"),
  },
  {
    input: "netmap:nic0&",
    error: E("netmap:nic0&", `invalid character '&' in interface name 'nic0&' (${CHARS})`),
    position: 11,
  },
  {
    input: "netmap:pipe{1}2",
    error: E("netmap:pipe{1}2", "only one pipe suffix ('{' or '}') is allowed, found a second '}'"),
    position: 13,
  },
  {
    input: "vale0:0@",
    error: E("vale0:0@", "empty option after '@' (expected '@N' or '@conf:...')"),
  },
  {
    input: "",
    error: E("", "empty name (expected e.g. 'vale0:p1', 'netmap:ens3' or 'tap:tap0')"),
  },
  {
    input: "netmap:nic0@netmap:lo/R",
    error: E("netmap:nic0@netmap:lo/R", `unknown option 'netmap' (${OPTIONS})`),
    position: 12,
  },
  { input: "vale0:0@opt", error: E("vale0:0@opt", `unknown option 'opt' (${OPTIONS})`) },
  // --- switch and port names ---
  { input: "vale0:", error: E("vale0:", "empty port name"), position: 6 },
  { input: "vale0:/x", error: E("vale0:/x", "empty port name before '/'") },
  {
    input: "valeABCDEFGHIJKL:a",
    error: E(
      "valeABCDEFGHIJKL:a",
      "switch name 'valeABCDEFGHIJKL' is 16 characters; at most 15 are allowed " +
        "(the ':' must come within the first 16 characters)",
    ),
  },
  {
    input: "vale0:abcdefghijklmnop",
    error: E(
      "vale0:abcdefghijklmnop",
      "port name 'abcdefghijklmnop' is 16 characters; at most 15 are allowed",
    ),
  },
  {
    input: "vale0:a:b",
    error: E("vale0:a:b", `invalid character ':' in port name 'a:b' (${VCHARS})`),
    position: 7,
  },
  {
    input: "vale0:a b",
    error: E("vale0:a b", `invalid character ' ' (space) in port name 'a b' (${VCHARS})`),
  },
  {
    input: "vale0:..",
    error: E("vale0:..", "port name '..' must start with a letter, a digit or '_'"),
  },
  {
    input: "netmap:nic0\t",
    error: E(
      "netmap:nic0\\x09",
      `invalid character U+0009 in interface name 'nic0\\x09' (${CHARS})`,
    ),
  },
  {
    input: "netmap:averyveryverylongname",
    error: E(
      "netmap:averyveryverylongname",
      "interface name 'averyveryverylongname' is 21 characters; at most 15 are allowed",
    ),
  },
  {
    input: "VALE0:a",
    error: E("VALE0:a", "unknown port type 'VALE0:' (port types are lower case)"),
  },
  {
    input: "nic0:1",
    error: E(
      "nic0:1",
      "unknown port type 'nic0:' (expected 'valeX:', 'netmap:', 'xdp:', 'packet:', 'tap:', " +
        "'memif:', 'pcap:', 'vhost:' or 'vhost-client:')",
    ),
  },
  {
    input: "vhost:",
    error: E("vhost:", "empty socket path (expected e.g. 'vhost:/run/vm1.sock')"),
    position: 6,
  },
  {
    input: "vhost:@abstract",
    error: E("vhost:@abstract", "abstract sockets are not supported for vhost-user"),
    position: 6,
  },
  // --- pipes ---
  { input: "vale0:p{", error: E("vale0:p{", "empty pipe id after '{'"), position: 8 },
  {
    input: "vale0:p}a.b",
    error: E(
      "vale0:p}a.b",
      "invalid character '.' in pipe id 'a.b' (allowed: letters, digits, '_')",
    ),
    position: 9,
  },
  {
    input: `vale0:p{${"x".repeat(60)}`,
    error: E(
      `vale0:p{${"x".repeat(60)}`,
      `'vale0:p{${"x".repeat(60)}' is 68 characters; at most 63 are allowed`,
    ),
  },
  {
    input: "xdp:nic0{1",
    error: E("xdp:nic0{1", "a pipe takes no access method; write 'netmap:nic0{1'"),
  },
  // --- modes ---
  {
    input: "netmap:nic0-1^",
    error: E(
      "netmap:nic0-1^",
      "'^' cannot follow the ring selector '-1' (give one of '^', '^N', '*', '-N')",
    ),
  },
  {
    input: "netmap:nic0^*",
    error: E("netmap:nic0^*", "'*' after '^': give only one of '^', '^N', '*', '-N'"),
  },
  {
    input: "vale0:a^x",
    error: E("vale0:a^x", "unexpected character 'x' after '^' (expected '/', '@' or the end)"),
  },
  {
    input: "netmap:nic0-4095",
    error: E("netmap:nic0-4095", "ring number 4095 is out of range (0..4094)"),
    position: 12,
  },
  {
    input: "tap:tap0^",
    error: E(
      "tap:tap0^",
      "'^' selects host rings, which a tap port does not have (the TAP device is the host stack)",
    ),
  },
  {
    input: "tap:tap0{1",
    error: E("tap:tap0{1", "pipes ('{', '}') exist only on vale and netmap ports"),
  },
  // --- flags ---
  { input: "vale0:a/q", error: E("vale0:a/q", `unknown flag 'q' (${FLAG_HELP})`), position: 8 },
  { input: "vale0:a/", error: E("vale0:a/", `empty flag list after '/' (${FLAG_HELP})`) },
  {
    input: "netmap:nic0/RT",
    error: E(
      "netmap:nic0/RT",
      "flags 'R' (RX rings only) and 'T' (TX rings only) exclude each other",
    ),
  },
  // --- memory region ---
  {
    input: "vale0:a@0",
    error: E("vale0:a@0", "memory region id 0 is out of range (1..65535)"),
  },
  {
    input: "vale0:a@65536",
    error: E("vale0:a@65536", "memory region id 65536 is out of range (1..65535)"),
  },
  {
    input: "vale0:a@2x",
    error: E(
      "vale0:a@2x",
      "unexpected character 'x' after the memory region id '@2' (expected '/', '@' or the end)",
    ),
  },
  {
    input: "vale0:a@2@share=vale0:b",
    error: E(
      "vale0:a@2@share=vale0:b",
      "'@N' and '@share=' both choose the memory region; give only one",
    ),
  },
  // --- options ---
  {
    input: "vale0:a@conf:rings=17",
    error: E("vale0:a@conf:rings=17", "rings=17 is out of range (1..16)"),
    position: 19,
  },
  {
    input: "vale0:a@conf:rings=0",
    error: E("vale0:a@conf:rings=0", "rings=0 is out of range (1..16)"),
  },
  {
    input: "vale0:a@conf:slots=4",
    error: E("vale0:a@conf:slots=4", "slots=4 is out of range (8..4096)"),
  },
  {
    input: "vale0:a@conf:tx-slots=8192",
    error: E("vale0:a@conf:tx-slots=8192", "tx-slots=8192 is out of range (8..4096)"),
  },
  {
    input: "vale0:a@conf:rings=two",
    error: E(
      "vale0:a@conf:rings=two",
      "'rings' in option 'conf' must be a whole number, got 'two'",
    ),
  },
  {
    input: "vale0:a@conf:foo=1",
    error: E("vale0:a@conf:foo=1", `unknown key 'foo' in option 'conf' (keys: ${CONF_KEYS})`),
  },
  {
    input: "vale0:a@conf:rings=2,rings=3",
    error: E("vale0:a@conf:rings=2,rings=3", "'rings' given twice in option 'conf'"),
  },
  {
    input: "vale0:a@conf:rings",
    error: E("vale0:a@conf:rings", "missing '=VALUE' after 'rings' in option 'conf'"),
  },
  {
    input: "vale0:a@conf:rings=",
    error: E("vale0:a@conf:rings=", "empty value for 'rings' in option 'conf'"),
  },
  {
    input: "vale0:a@conf:rings=2,",
    error: E("vale0:a@conf:rings=2,", "empty setting in option 'conf' (expected KEY=VALUE)"),
  },
  {
    input: "vale0:a@conf=rings",
    error: E(
      "vale0:a@conf=rings",
      "option 'conf' takes settings after ':' (e.g. '@conf:rings=2,slots=1024')",
    ),
  },
  {
    input: "netmap:nic0@extmem:file=/tmp/x",
    error: E("netmap:nic0@extmem:file=/tmp/x", "option 'extmem' is not supported by vale"),
  },
  {
    input: "vale0:a@share=nic0",
    error: E(
      "vale0:a@share=nic0",
      "option 'share': port 'nic0': a bare interface name is not a port name; write " +
        "'netmap:nic0' for a kernel interface (or use 'xdp:', 'packet:', 'tap:')",
    ),
  },
  // --- memif ---
  {
    input: "memif:",
    error: E("memif:", "empty socket path (expected e.g. 'memif:/run/vpp/memif.sock')"),
  },
  {
    input: "memif:/run/m.sock#",
    error: E("memif:/run/m.sock#", "empty settings after '#' (expected KEY=VALUE,...)"),
  },
  {
    input: "memif:/run/m.sock#role=boss",
    error: E("memif:/run/m.sock#role=boss", "role must be 'client' or 'server', got 'boss'"),
  },
  {
    input: "memif:/run/m.sock#slots=1000",
    error: E("memif:/run/m.sock#slots=1000", "slots=1000 in memif settings must be a power of two"),
  },
  {
    input: "memif:/run/m.sock#id=4294967296",
    error: E("memif:/run/m.sock#id=4294967296", "id=4294967296 is out of range (0..4294967295)"),
  },
  {
    input: "memif:/run/m.sock#tx-slots=64",
    error: E(
      "memif:/run/m.sock#tx-slots=64",
      "unknown key 'tx-slots' in memif settings " +
        "(keys: id, role, secret, rings, tx-rings, rx-rings, slots, buffer-size)",
    ),
  },
  {
    input: "memif:/" + "d".repeat(107),
    error: E(
      "memif:/" + "d".repeat(107),
      "socket path is 108 bytes; at most 107 are allowed (sockaddr_un)",
    ),
  },
  // --- pcap ---
  {
    input: "pcap:",
    error: E("pcap:", "empty file name (expected e.g. 'pcap:trace.pcap')"),
  },
  {
    input: "pcap:t.pcap#mode=rw",
    error: E("pcap:t.pcap#mode=rw", "mode must be 'read', 'write' or 'append', got 'rw'"),
  },
  {
    input: "pcap:t.pcap#mode=write,loop=2",
    error: E("pcap:t.pcap#mode=write,loop=2", "'loop' applies to mode=read only"),
  },
  {
    input: "pcap:t.pcap#snaplen=100",
    error: E("pcap:t.pcap#snaplen=100", "'snaplen' applies to mode=write and mode=append only"),
  },
  // --- 2012 names: what is refused, and why ---
  {
    input: "vale-abcdefghijk:a",
    error: E(
      "vale-abcdefghijk:a",
      "switch name 'vale-abcdefghijk' is 16 characters; at most 15 are allowed " +
        "(the ':' must come within the first 16 characters)",
    ),
    position: 15,
  },
  {
    input: "vale-abcdefghijkl",
    error: E(
      "vale-abcdefghijkl",
      `port name 'vale-abcdefghijkl' is 17 characters; at most 15 are allowed ${WHOLE}`,
    ),
  },
  {
    input: "vale a:1",
    error: E("vale a:1", `invalid character ' ' (space) in switch name 'vale a' (${VCHARS})`),
    position: 4,
  },
  {
    input: "vale/x:1",
    error: E("vale/x:1", `invalid character '/' in switch name 'vale/x' (${VCHARS})`),
    position: 4,
  },
  {
    input: "vale{1:a",
    error: E("vale{1:a", `invalid character '{' in switch name 'vale{1' (${VCHARS})`),
    position: 4,
  },
  {
    input: "vale-a^b:1",
    error: E("vale-a^b:1", `invalid character '^' in switch name 'vale-a^b' (${VCHARS})`),
    position: 6,
  },
  {
    input: "vale\x01:a",
    error: E("vale\\x01:a", `invalid character U+0001 in switch name 'vale\\x01' (${VCHARS})`),
    position: 4,
  },
  {
    input: "vale\u00e9:a",
    error: E("vale\u00e9:a", `invalid character '\u00e9' in switch name 'vale\u00e9' (${VCHARS})`),
    position: 4,
  },
  {
    input: "vale-\u00e9",
    error: E("vale-\u00e9", `invalid character '\u00e9' in port name 'vale-\u00e9' (${VCHARS})`),
    position: 5,
  },
  {
    input: "vale foo",
    error: E("vale foo", `invalid character ' ' (space) in port name 'vale foo' (${VCHARS})`),
    position: 4,
  },
  { input: "vale-a:", error: E("vale-a:", "empty port name"), position: 7 },
  { input: "vale-foo:", error: E("vale-foo:", "empty port name"), position: 9 },
  {
    input: "vale-a:.x",
    error: E("vale-a:.x", "port name '.x' must start with a letter, a digit or '_'"),
    position: 7,
  },
  {
    input: "vale-a:1:2",
    error: E("vale-a:1:2", `invalid character ':' in port name '1:2' (${VCHARS})`),
    position: 8,
  },
  {
    input: "vale-a:b\tc",
    error: E("vale-a:b\\x09c", `invalid character U+0009 in port name 'b\\x09c' (${VCHARS})`),
    position: 8,
  },
  { input: "vale-foo/q", error: E("vale-foo/q", `unknown flag 'q' (${FLAG_HELP})`), position: 9 },
  {
    input: "vale*:1",
    error: E("vale*:1", `invalid character '*' in switch name 'vale*' (${VCHARS})`),
    position: 4,
  },
  {
    input: "vale}:1",
    error: E("vale}:1", `invalid character '}' in switch name 'vale}' (${VCHARS})`),
    position: 4,
  },
  {
    input: "vale@x:1",
    error: E(
      "vale@x:1",
      `unknown option 'x' (${OPTIONS}; '@' cannot be part of a switch name)`,
    ),
    position: 5,
  },
];
