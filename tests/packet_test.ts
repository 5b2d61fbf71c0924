import assert from "node:assert/strict";
import {
  addressesAt,
  advanceFrame,
  buildUdpFrame,
  checksumAdjust,
  checksumAdjust32,
  CYCLE_ACTIVE,
  CYCLE_RANDOM_SRC,
  CYCLE_UDP_CSUM,
  CYCLE_WORDS,
  cycleAddresses,
  cycleIsActive,
  cycleLength,
  cycleRandom32,
  CycleWord,
  decodeCycle,
  decodePing,
  decodeTxSeq,
  encodeCycle,
  encodePing,
  encodeTxSeq,
  fixChecksums,
  internetChecksum,
  ipChecksum,
  ipFromString,
  ipToString,
  isBroadcast,
  isMulticast,
  macFromString,
  macToString,
  makeCycle,
  NETMAP_PAYLOAD,
  nextAddresses,
  PacketError,
  parseEthernet,
  parseIpRange,
  parseIPv4,
  parseMacArg,
  parseUDP,
  pingRttNs,
  pktgenTemplate,
  readAddresses,
  swapForPong,
  udpChecksum,
  verifyIpChecksum,
  verifyUdpChecksum,
  writeAddresses,
} from "../lib/tools/packet.ts";

// ---------------------------------------------------------------------------
// independent reference checksums: a deliberately different implementation
// (DataView words, BigInt accumulator, a single fold at the end)

function refSum(bytes: Uint8Array): bigint {
  const padded = new Uint8Array(bytes.length + (bytes.length & 1));
  padded.set(bytes);
  const dv = new DataView(padded.buffer);
  let s = 0n;
  for (let i = 0; i < padded.length; i += 2) s += BigInt(dv.getUint16(i, false));
  while (s >> 16n) s = (s & 0xffffn) + (s >> 16n);
  return s;
}

function refIpChecksum(frame: Uint8Array, ip = 14): number {
  const hdr = frame.slice(ip, ip + (frame[ip] & 15) * 4);
  hdr[10] = hdr[11] = 0;
  return Number(~refSum(hdr) & 0xffffn);
}

function refUdpChecksum(frame: Uint8Array, ip = 14): number {
  const l4 = ip + (frame[ip] & 15) * 4;
  const ulen = (frame[l4 + 4] << 8) | frame[l4 + 5];
  const pseudo = new Uint8Array(12 + ulen);
  pseudo.set(frame.subarray(ip + 12, ip + 20), 0);
  pseudo[9] = 17;
  pseudo[10] = ulen >> 8;
  pseudo[11] = ulen & 255;
  pseudo.set(frame.subarray(l4, l4 + ulen), 12);
  pseudo[12 + 6] = pseudo[12 + 7] = 0;
  const c = Number(~refSum(pseudo) & 0xffffn);
  return c === 0 ? 0xffff : c;
}

function be16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

// ---------------------------------------------------------------------------

Deno.test("checksums: known IPv4 header vector and reference implementation", async (t) => {
  await t.step("textbook header 192.168.0.1 -> 192.168.0.199 has checksum 0xb861", () => {
    const h = new Uint8Array([
      0x45,
      0x00,
      0x00,
      0x73,
      0x00,
      0x00,
      0x40,
      0x00,
      0x40,
      0x11,
      0x00,
      0x00, //
      0xc0,
      0xa8,
      0x00,
      0x01,
      0xc0,
      0xa8,
      0x00,
      0xc7,
    ]);
    assert.equal(ipChecksum(h, 0), 0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    assert.equal(internetChecksum(h), 0); // a valid header sums to 0xffff
    assert.ok(verifyIpChecksum(h, 0));
    assert.equal(ipChecksum(h, 0), 0xb861); // the field itself is ignored
  });

  await t.step("RFC 1071 section 3 example sum", () => {
    const d = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    assert.equal(internetChecksum(d), ~0xddf2 & 0xffff);
  });

  await t.step("built frames of many lengths match the reference", () => {
    const r = rng(7);
    for (const len of [60, 61, 62, 63, 64, 99, 128, 1000, 1513, 1514, 9000, 65535]) {
      const f = buildUdpFrame({
        length: len,
        srcIp: r(),
        dstIp: r(),
        srcPort: r() & 0xffff,
        dstPort: r() & 0xffff,
        srcMac: "02:00:00:00:00:01",
      });
      assert.equal(f.length, len);
      assert.equal(be16(f, 24), refIpChecksum(f), `ip csum len ${len}`);
      assert.equal(be16(f, 40), refUdpChecksum(f), `udp csum len ${len}`);
      assert.equal(ipChecksum(f), refIpChecksum(f));
      assert.equal(udpChecksum(f), refUdpChecksum(f));
      assert.ok(verifyIpChecksum(f) && verifyUdpChecksum(f));
    }
  });

  await t.step("corruption is detected", () => {
    const f = buildUdpFrame({ length: 100 });
    f[80] ^= 1;
    assert.ok(!verifyUdpChecksum(f));
    assert.ok(verifyIpChecksum(f));
    f[80] ^= 1;
    f[22] ^= 1; // TTL
    assert.ok(!verifyIpChecksum(f));
    fixChecksums(f);
    assert.ok(verifyIpChecksum(f) && verifyUdpChecksum(f));
  });

  await t.step("RFC 1624 incremental update equals full recomputation", () => {
    const r = rng(99);
    for (let k = 0; k < 2000; k++) {
      const f = buildUdpFrame({ length: 60 + (r() % 200), srcIp: r(), dstIp: r() });
      const oldIp = be16(f, 26) * 65536 + be16(f, 28);
      const newIp = r();
      const hc = be16(f, 24);
      f[26] = newIp >>> 24;
      f[27] = (newIp >>> 16) & 255;
      f[28] = (newIp >>> 8) & 255;
      f[29] = newIp & 255;
      assert.equal(checksumAdjust32(hc, oldIp, newIp), refIpChecksum(f));
      const w = be16(f, 22);
      const nw = r() & 0xffff;
      const hc2 = refIpChecksum(f);
      f[22] = nw >> 8;
      f[23] = nw & 255;
      assert.equal(checksumAdjust(hc2, w, nw), refIpChecksum(f));
    }
  });
});

Deno.test("buildUdpFrame: netmap pkt-gen's frame", async (t) => {
  await t.step("defaults: 60 bytes, broadcast, 10.0.0.1:1234 -> 10.1.0.1:1234", () => {
    const f = buildUdpFrame();
    assert.equal(f.length, 60);
    const eth = parseEthernet(f);
    assert.equal(eth.dst, "ff:ff:ff:ff:ff:ff");
    assert.equal(eth.src, "00:00:00:00:00:00");
    assert.equal(eth.etherType, 0x0800);
    assert.equal(eth.vlan, null);
    const ip = parseIPv4(f);
    assert.deepEqual(
      [ip.version, ip.headerLength, ip.tos, ip.totalLength, ip.id, ip.flags, ip.ttl, ip.protocol],
      [4, 20, 0x10, 46, 0, 0b010, 64, 17],
    );
    assert.equal(ip.src, "10.0.0.1");
    assert.equal(ip.dst, "10.1.0.1");
    assert.ok(ip.checksumValid);
    const udp = parseUDP(f);
    assert.deepEqual([udp.srcPort, udp.dstPort, udp.length, udp.payloadOffset], [
      1234,
      1234,
      26,
      42,
    ]);
    assert.ok(udp.checksumValid);
    assert.equal(new TextDecoder().decode(f.subarray(42)), NETMAP_PAYLOAD.slice(0, 18));
  });

  await t.step("payload text repeats", () => {
    const f = buildUdpFrame({ length: 300 });
    const text = new TextDecoder().decode(f.subarray(42));
    assert.equal(text, NETMAP_PAYLOAD.repeat(5).slice(0, 258));
    assert.ok(text.startsWith("netmap pkt-gen DIRECT payload\n"));
  });

  await t.step("length limits", () => {
    assert.throws(() => buildUdpFrame({ length: 59 }), PacketError);
    assert.throws(() => buildUdpFrame({ length: 65536 }), PacketError);
    assert.throws(() => buildUdpFrame({ length: 60.5 }), PacketError);
    assert.equal(buildUdpFrame({ length: 42, allowRunt: true }).length, 42);
    assert.throws(() => buildUdpFrame({ length: 41, allowRunt: true }), PacketError);
    const big = buildUdpFrame({ length: 65535 });
    assert.equal(parseIPv4(big).totalLength, 65521);
    assert.ok(parseUDP(big).checksumValid);
  });

  await t.step("udpChecksum: false leaves 0 (valid = unused)", () => {
    const f = buildUdpFrame({ udpChecksum: false });
    assert.equal(be16(f, 40), 0);
    assert.ok(verifyUdpChecksum(f));
  });

  await t.step("bad options throw", () => {
    assert.throws(() => buildUdpFrame({ srcMac: "zz" }), PacketError);
    assert.throws(() => buildUdpFrame({ srcIp: "1.2.3" }), PacketError);
    assert.throws(() => buildUdpFrame({ srcPort: 65536 }), PacketError);
  });
});

Deno.test("address strings and MAC classes", () => {
  assert.deepEqual([...macFromString("0:1b:2C:d:ee:ff")], [0, 0x1b, 0x2c, 0x0d, 0xee, 0xff]);
  assert.equal(macToString(macFromString("0:1b:2C:d:ee:ff")), "00:1b:2c:0d:ee:ff");
  for (
    const bad of ["", "00:11:22:33:44", "00:11:22:33:44:55:66", "001:1:1:1:1:1", "g0:0:0:0:0:0"]
  ) {
    assert.throws(() => macFromString(bad), PacketError, bad);
  }
  assert.equal(ipFromString("10.1.0.1"), 0x0a010001);
  assert.equal(ipFromString("255.255.255.255"), 0xffffffff);
  assert.equal(ipToString(0xc0a80001), "192.168.0.1");
  for (const bad of ["1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "a.b.c.d", "1..2.3", ""]) {
    assert.throws(() => ipFromString(bad), PacketError, bad);
  }
  assert.ok(isBroadcast("ff:ff:ff:ff:ff:ff"));
  assert.ok(isMulticast("ff:ff:ff:ff:ff:ff"));
  assert.ok(isMulticast("01:00:5e:00:00:01"));
  assert.ok(!isBroadcast("01:00:5e:00:00:01"));
  assert.ok(!isMulticast("02:00:00:00:00:01"));
  const f = buildUdpFrame({ dstMac: "33:33:00:00:00:01", srcMac: "02:00:00:00:00:02" });
  assert.ok(isMulticast(f, 0) && !isBroadcast(f, 0) && !isMulticast(f, 6));
});

Deno.test("parseEthernet / parseIPv4 / parseUDP", async (t) => {
  await t.step("VLAN tag skipped", () => {
    const f = buildUdpFrame({ length: 64 });
    const tagged = new Uint8Array(68);
    tagged.set(f.subarray(0, 12), 0);
    tagged.set([0x81, 0x00, 0x20, 0x2a], 12); // prio 1, vid 42
    tagged.set(f.subarray(12), 16);
    const e = parseEthernet(tagged);
    assert.equal(e.vlan, 42);
    assert.equal(e.etherType, 0x0800);
    assert.equal(e.payloadOffset, 18);
    assert.equal(parseIPv4(tagged, 18).dst, "10.1.0.1");
    assert.ok(parseUDP(tagged, 18).checksumValid);
  });
  await t.step("short frames and wrong protocols throw PacketError", () => {
    assert.throws(() => parseEthernet(new Uint8Array(13)), PacketError);
    assert.throws(() => parseIPv4(new Uint8Array(30)), PacketError);
    const f = buildUdpFrame();
    f[23] = 6; // TCP
    assert.throws(() => parseUDP(f), /not UDP/);
    const g = buildUdpFrame();
    g[14] = 0x65;
    assert.throws(() => parseIPv4(g), /not IPv4/);
  });
  await t.step("cut datagram: checksumValid false, no throw", () => {
    const f = buildUdpFrame({ length: 200 }).subarray(0, 100);
    const u = parseUDP(f);
    assert.equal(u.length, 166);
    assert.equal(u.checksumValid, false);
  });
});

Deno.test("pkt-gen -s/-d/-S/-D parsing (netmap extract_ip_range / ether_aton)", async (t) => {
  const ip = ipFromString;
  const cases: [string, [string, string, number, number]][] = [
    ["10.0.0.1", ["10.0.0.1", "10.0.0.1", 1234, 1234]],
    ["10.0.0.1:5000", ["10.0.0.1", "10.0.0.1", 5000, 5000]],
    ["10.0.0.1-10.0.0.5", ["10.0.0.1", "10.0.0.5", 1234, 1234]],
    ["10.0.0.1:100-10.0.0.5:200", ["10.0.0.1", "10.0.0.5", 100, 200]],
    ["10.0.0.5:200-10.0.0.1:100", ["10.0.0.1", "10.0.0.5", 100, 200]], // both swapped
    ["10.0.0.5:100-10.0.0.1:200", ["10.0.0.1", "10.0.0.5", 100, 200]],
    ["10.0.0.1:5000-10.0.0.3", ["10.0.0.1", "10.0.0.3", 5000, 5000]], // end port = start port
    ["10.0.0.1-10.0.0.3:2000", ["10.0.0.1", "10.0.0.3", 1234, 2000]], // start port default
    ["10.0.0.1-10.0.0.3:1000", ["10.0.0.1", "10.0.0.3", 1000, 1234]], // swapped ports
    ["10.0.0.1:0x10", ["10.0.0.1", "10.0.0.1", 16, 16]], // strtol base 0
    ["10.0.0.1:010", ["10.0.0.1", "10.0.0.1", 8, 8]],
    ["10.0.0.1:0", ["10.0.0.1", "10.0.0.1", 0, 0]],
  ];
  await t.step("table", () => {
    for (const [arg, [s, e, p0, p1]] of cases) {
      assert.deepEqual(parseIpRange(arg), { start: ip(s), end: ip(e), port0: p0, port1: p1 }, arg);
    }
  });
  await t.step("errors", () => {
    for (
      const bad of [
        "",
        "10.0.0",
        "10.0.0.256",
        "10.0.0.1:",
        "10.0.0.1:70000",
        "10.0.0.1:abc",
        "10.0.0.1:12x",
        "10.0.0.1-",
        "10.0.0.1-10.0.0.2-10.0.0.3",
        "10.0.0.1:08",
      ]
    ) {
      assert.throws(() => parseIpRange(bad), PacketError, bad);
    }
  });
  await t.step("MACs: single address only, as netmap", () => {
    assert.equal(macToString(parseMacArg("2:0:0:0:0:1")), "02:00:00:00:00:01");
    assert.throws(() => parseMacArg("02:00:00:00:00:01-02:00:00:00:00:05"), /no MAC ranges/);
  });
  await t.step("pktgenTemplate defaults", () => {
    const t0 = pktgenTemplate();
    assert.equal(t0.frame.length, 60);
    assert.equal(macToString(t0.dstMac), "ff:ff:ff:ff:ff:ff");
    assert.equal(macToString(t0.srcMac), "00:00:00:00:00:00");
    assert.deepEqual(readAddresses(t0.frame), {
      srcIp: ip("10.0.0.1"),
      dstIp: ip("10.1.0.1"),
      srcPort: 1234,
      dstPort: 1234,
    });
    assert.equal(t0.flat[CycleWord.flags] & CYCLE_ACTIVE, 0);
    assert.equal(cycleLength(t0.cycle), 1n);
  });
});

Deno.test("address cycling (netmap update_ip)", async (t) => {
  const ip = ipFromString;
  const c = makeCycle("10.0.0.1:1-10.0.0.2:2", "10.1.0.1:7-10.1.0.2:8");
  const fmt = (a: { srcIp: number; srcPort: number; dstIp: number; dstPort: number }) =>
    `${ipToString(a.srcIp)}:${a.srcPort}>${ipToString(a.dstIp)}:${a.dstPort}`;

  await t.step("odometer order: src port, src ip, dst port, dst ip", () => {
    const seq = [...take(cycleAddresses(c), 17)].map(fmt);
    assert.deepEqual(seq, [
      "10.0.0.1:1>10.1.0.1:7",
      "10.0.0.1:2>10.1.0.1:7",
      "10.0.0.2:1>10.1.0.1:7",
      "10.0.0.2:2>10.1.0.1:7",
      "10.0.0.1:1>10.1.0.1:8",
      "10.0.0.1:2>10.1.0.1:8",
      "10.0.0.2:1>10.1.0.1:8",
      "10.0.0.2:2>10.1.0.1:8",
      "10.0.0.1:1>10.1.0.2:7",
      "10.0.0.1:2>10.1.0.2:7",
      "10.0.0.2:1>10.1.0.2:7",
      "10.0.0.2:2>10.1.0.2:7",
      "10.0.0.1:1>10.1.0.2:8",
      "10.0.0.1:2>10.1.0.2:8",
      "10.0.0.2:1>10.1.0.2:8",
      "10.0.0.2:2>10.1.0.2:8",
      "10.0.0.1:1>10.1.0.1:7", // wraps to the start
    ]);
    assert.equal(cycleLength(c), 16n);
    assert.ok(cycleIsActive(c));
  });

  await t.step("addressesAt(i) == i steps of nextAddresses", () => {
    const c2 = makeCycle("10.0.0.250:5-10.0.1.3:7", "10.1.0.1-10.1.0.3:1236");
    let cur = addressesAt(c2, 0);
    for (let i = 1; i < 500; i++) {
      cur = nextAddresses(c2, cur, i);
      assert.deepEqual(addressesAt(c2, i), cur, `i=${i}`);
    }
    assert.deepEqual(addressesAt(c2, 1000n * cycleLength(c2) + 5n), addressesAt(c2, 5));
  });

  await t.step("address range crossing an octet boundary", () => {
    const c3 = makeCycle("10.0.0.255-10.0.1.0", "10.1.0.1");
    assert.deepEqual([...take(cycleAddresses(c3), 3)].map((a) => ipToString(a.srcIp)), [
      "10.0.0.255",
      "10.0.1.0",
      "10.0.0.255",
    ]);
  });

  await t.step("full 32-bit and 16-bit ranges wrap without overflow", () => {
    const c4 = makeCycle("0.0.0.0:0-255.255.255.255:65535", "1.1.1.1");
    assert.equal(cycleLength(c4), 1n << 48n);
    const last = addressesAt(c4, (1n << 48n) - 1n);
    assert.deepEqual([last.srcIp, last.srcPort], [0xffffffff, 65535]);
    assert.deepEqual(nextAddresses(c4, last), addressesAt(c4, 0));
  });

  await t.step("-z: src random every packet, dst advances every packet", () => {
    const cz = makeCycle("10.0.0.1", "10.1.0.1:1-10.1.0.1:3", { randomSrc: true, seed: 42 });
    const seq = [...take(cycleAddresses(cz), 7)];
    assert.deepEqual(seq[0], addressesAt(cz, 0)); // packet 0 = template
    assert.equal(seq[0].srcIp, ip("10.0.0.1"));
    assert.deepEqual(seq.map((a) => a.dstPort), [1, 2, 3, 1, 2, 3, 1]);
    const srcs = new Set(seq.slice(1).map((a) => a.srcIp));
    assert.equal(srcs.size, 6);
    for (let i = 1; i < 7; i++) {
      assert.equal(seq[i].srcIp, cycleRandom32(42n, i, 0));
      assert.equal(seq[i].srcPort, cycleRandom32(42n, i, 1) & 0xffff);
      assert.deepEqual(addressesAt(cz, i), seq[i]);
    }
  });

  await t.step("-Z: dst random, src cycles", () => {
    const cZ = makeCycle("10.0.0.1-10.0.0.2", "10.1.0.1", { randomDst: true, seed: 1 });
    const seq = [...take(cycleAddresses(cZ), 5)];
    assert.deepEqual(seq.map((a) => ipToString(a.srcIp)), [
      "10.0.0.1",
      "10.0.0.2",
      "10.0.0.1",
      "10.0.0.2",
      "10.0.0.1",
    ]);
    assert.notEqual(seq[1].dstIp, seq[2].dstIp);
  });

  await t.step("random generator matches the C reference (vectors from the doc's C code)", () => {
    const seed = (0x9abcdef0n << 32n) | 0x12345678n;
    const want: [bigint, number, number][] = [
      [0n, 0, 270367854],
      [0n, 3, 2839685419],
      [1n, 0, 2520179407],
      [2n, 2, 2068355387],
      [1000n, 1, 644238291],
      [0x100000005n, 0, 4140567841],
      [0x100000005n, 3, 1151728733],
    ];
    for (const [i, lane, v] of want) assert.equal(cycleRandom32(seed, i, lane), v);
  });

  await t.step("advanceFrame rewrites in place = a freshly built frame, checksums valid", () => {
    for (
      const c5 of [
        makeCycle("10.0.0.1:1000-10.0.0.3:1002", "10.1.0.1:5-10.1.0.2:6"),
        makeCycle("10.0.0.1", "10.1.0.1", { randomSrc: true, randomDst: true, seed: 9 }),
        makeCycle("192.168.255.254:65534-192.169.0.1:65535", "0.0.0.0:0-0.0.0.1:1"),
      ]
    ) {
      const a0 = addressesAt(c5, 0);
      const opts = { length: 97, srcMac: "02:00:00:00:00:01" };
      const frame = buildUdpFrame({ ...opts, ...a0 });
      for (let i = 1; i < 200; i++) {
        const a = advanceFrame(frame, c5, i);
        assert.deepEqual(a, addressesAt(c5, i));
        const fresh = buildUdpFrame({ ...opts, ...a });
        assert.deepEqual(frame, fresh, `packet ${i}`);
        assert.equal(be16(frame, 24), refIpChecksum(frame));
        assert.equal(be16(frame, 40), refUdpChecksum(frame));
      }
    }
  });

  await t.step(
    "writeAddresses: only changed fields, random values, unused UDP checksum kept 0",
    () => {
      const r = rng(5);
      const f = buildUdpFrame({ length: 61 });
      for (let k = 0; k < 3000; k++) {
        const cur = readAddresses(f);
        const next = { ...cur };
        const which = r() & 15;
        if (which & 1) next.srcIp = r();
        if (which & 2) next.srcPort = r() & 0xffff;
        if (which & 4) next.dstIp = r();
        if (which & 8) next.dstPort = r() & 0xffff;
        const changed = writeAddresses(f, next);
        assert.equal(changed & ~which, 0);
        assert.deepEqual(readAddresses(f), next);
        assert.equal(be16(f, 24), refIpChecksum(f));
        assert.equal(be16(f, 40), refUdpChecksum(f));
      }
      const g = buildUdpFrame({ udpChecksum: false });
      writeAddresses(g, { srcIp: 1, dstIp: 2, srcPort: 3, dstPort: 4 });
      assert.equal(be16(g, 40), 0);
      assert.ok(verifyIpChecksum(g));
    },
  );
});

Deno.test("flat cycle structure for C", () => {
  const c = makeCycle("10.0.0.1:10-10.0.0.9:20", "10.1.0.1:30-10.1.0.2:40", {
    randomSrc: true,
    seed: 0x1122334455667788n,
  });
  const w = encodeCycle(c);
  assert.equal(w.length, CYCLE_WORDS);
  assert.equal(w.byteLength, 64);
  assert.deepEqual([...w], [
    1,
    CYCLE_RANDOM_SRC | CYCLE_UDP_CSUM | CYCLE_ACTIVE,
    14,
    34,
    0x0a000001,
    0x0a000009,
    10,
    20,
    0x0a010001,
    0x0a010002,
    30,
    40,
    0x55667788,
    0x11223344,
    0,
    0,
  ]);
  // little-endian bytes, what C reads through the struct
  const b = new Uint8Array(w.buffer);
  assert.deepEqual([...b.subarray(16, 20)], [0x01, 0x00, 0x00, 0x0a]);
  assert.deepEqual(decodeCycle(w), c);
  const bad = w.slice();
  bad[0] = 2;
  assert.throws(() => decodeCycle(bad), PacketError);
  const bad2 = w.slice();
  bad2[CycleWord.srcPort0] = 70000;
  assert.throws(() => decodeCycle(bad2), PacketError);
});

Deno.test("ping / pong / txseq payloads", async (t) => {
  await t.step("ping: seq at 42, sec at 46, nsec at 50, little endian; checksum kept valid", () => {
    const f = buildUdpFrame();
    encodePing(f, 0x01020304, 0x0a0b0c0d, 999_999_999);
    assert.deepEqual([...f.subarray(42, 46)], [4, 3, 2, 1]);
    assert.deepEqual([...f.subarray(46, 50)], [0x0d, 0x0c, 0x0b, 0x0a]);
    assert.deepEqual(decodePing(f), { seq: 0x01020304, sec: 0x0a0b0c0d, nsec: 999_999_999 });
    assert.equal(be16(f, 40), refUdpChecksum(f));
    const r = rng(3);
    for (let k = 0; k < 500; k++) {
      const s = { seq: r(), sec: r(), nsec: r() % 1e9 };
      encodePing(f, s.seq, s.sec, s.nsec);
      assert.deepEqual(decodePing(f), s);
      assert.equal(be16(f, 40), refUdpChecksum(f));
    }
  });
  await t.step("ping without checksum update (netmap's behaviour) leaves it stale", () => {
    const f = buildUdpFrame();
    encodePing(f, 1, 2, 3, false);
    assert.ok(!verifyUdpChecksum(f));
    assert.throws(() => encodePing(new Uint8Array(53), 1, 2, 3), PacketError);
  });
  await t.step("pingRttNs as netmap (u32 seconds wrap)", () => {
    assert.equal(pingRttNs({ seq: 0, sec: 10, nsec: 999_000_000 }, 11, 1_000_000), 2_000_000);
    assert.equal(pingRttNs({ seq: 0, sec: 0xffffffff, nsec: 0 }, 0x100000000, 500), 1e9 + 500);
  });
  await t.step("txseq: big endian at 42, checksum valid", () => {
    const f = buildUdpFrame({ length: 64 });
    for (const s of [0, 1, 0xdeadbeef, 0xffffffff]) {
      encodeTxSeq(f, s);
      assert.equal(decodeTxSeq(f), s);
      assert.equal(be16(f, 40), refUdpChecksum(f));
    }
    encodeTxSeq(f, 0x01020304);
    assert.deepEqual([...f.subarray(42, 46)], [1, 2, 3, 4]);
  });
  await t.step("swapForPong: MACs, IPs, ports swapped, checksums still valid", () => {
    const f = buildUdpFrame({
      srcMac: "02:00:00:00:00:01",
      dstMac: "02:00:00:00:00:02",
      srcIp: "10.0.0.1",
      dstIp: "10.1.0.9",
      srcPort: 1111,
      dstPort: 2222,
    });
    encodePing(f, 7, 8, 9);
    const before = f.slice();
    const out = swapForPong(f);
    assert.equal(out, f); // in place
    const e = parseEthernet(f), ip = parseIPv4(f), u = parseUDP(f);
    assert.deepEqual([e.src, e.dst], ["02:00:00:00:00:02", "02:00:00:00:00:01"]);
    assert.deepEqual([ip.src, ip.dst], ["10.1.0.9", "10.0.0.1"]);
    assert.deepEqual([u.srcPort, u.dstPort], [2222, 1111]);
    assert.ok(ip.checksumValid && u.checksumValid);
    assert.deepEqual(decodePing(f), { seq: 7, sec: 8, nsec: 9 });
    swapForPong(f);
    assert.deepEqual(f, before); // an involution
  });
  await t.step(
    "swapForPong swapPorts: false (netmap's pong) and repairing a stale checksum",
    () => {
      const f = buildUdpFrame({ srcPort: 1, dstPort: 2 });
      encodePing(f, 1, 2, 3, false); // stale, as netmap's ping sends it
      swapForPong(f, { swapPorts: false, recomputeChecksums: true });
      const u = parseUDP(f);
      assert.deepEqual([u.srcPort, u.dstPort], [1, 2]);
      assert.ok(u.checksumValid);
      assert.equal(be16(f, 40), refUdpChecksum(f));
    },
  );
  await t.step("swapForPong on non-IPv4 swaps MACs only", () => {
    const f = new Uint8Array(60);
    f.set(macFromString("02:00:00:00:00:01"), 0);
    f.set(macFromString("02:00:00:00:00:02"), 6);
    f[12] = 0x86;
    f[13] = 0xdd;
    f[30] = 0xaa;
    swapForPong(f);
    assert.equal(macToString(f, 0), "02:00:00:00:00:02");
    assert.equal(f[30], 0xaa);
  });
});

function* take<T>(it: Iterator<T> | Iterable<T>, n: number): Generator<T> {
  const iter = Symbol.iterator in it ? (it as Iterable<T>)[Symbol.iterator]() : it as Iterator<T>;
  for (let i = 0; i < n; i++) {
    const r = iter.next();
    if (r.done) return;
    yield r.value;
  }
}
