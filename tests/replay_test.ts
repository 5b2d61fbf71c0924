// vale replay (nmreplay's role) and pkt-gen -P with several packets, run as
// a user runs them (bin/vale replay, bin/pkt-gen) into a switch port; a
// receiver on the switch checks every frame byte for byte and the order.
// Timing modes are checked by counts, order and generous bounds only.
import assert from "node:assert/strict";
import { openPort } from "../lib/mod.ts";
import type { Port } from "../lib/switch/port.ts";
import { encodePcap } from "../lib/formats/pcap.ts";
import { tempRunDir } from "./helpers/procs.ts";
import { runTool, startTool } from "./helpers/tools.ts";
import { bytesOf, cat, ngBlock } from "./helpers/pcap_samples.ts";
import { mac, makeFrame } from "./helpers/frames.ts";

const N = 200;
/** N distinct frames, 60..1514 bytes, to a MAC nobody has (flooded to the receiver). */
const FRAMES = Array.from(
  { length: N },
  (_, i) => makeFrame(mac(99), mac(1), i, 1, 60 + ((i * 97) % 1455)),
);
const T0 = 1_700_000_000;

/** A classic pcap (µs) of FRAMES, `gapUs` apart. */
function pcapOf(gapUs: number): Uint8Array {
  return encodePcap(FRAMES.map((data, i) => {
    const us = i * gapUs;
    return { data, ts: { sec: T0 + Math.floor(us / 1e6), nsec: (us % 1e6) * 1000 } };
  }));
}

/** A little-endian pcapng of FRAMES (one Ethernet interface, ns resolution), `gapUs` apart. */
function pcapngOf(gapUs: number): Uint8Array {
  const le = true;
  const shb = ngBlock(
    0x0a0d0d0a,
    bytesOf(le, [0x1a2b3c4d, 4], [1, 2], [0, 2], [0xffffffff, 4], [0xffffffff, 4]),
    le,
  );
  // linktype 1, snaplen 0; option if_tsresol (9) = 9 (ns), end of options
  const idb = ngBlock(
    1,
    bytesOf(le, [1, 2], [0, 2], [0, 4], [9, 2], [1, 2], [9, 1], [0, 1], [0, 1], [0, 1], [0, 2], [
      0,
      2,
    ]),
    le,
  );
  const epbs = FRAMES.map((f, i) => {
    const ts = BigInt(T0) * 1_000_000_000n + BigInt(i * gapUs) * 1000n;
    return ngBlock(
      6,
      cat(
        bytesOf(
          le,
          [0, 4],
          [Number(ts >> 32n), 4],
          [Number(ts & 0xffffffffn), 4],
          [f.length, 4],
          [f.length, 4],
        ),
        f,
      ),
      le,
    );
  });
  return cat(shb, idb, ...epbs);
}

/** Everything the receiver holds now (its ring is big enough for every test here). */
function drain(rx: Port): Uint8Array[] {
  const got: Uint8Array[] = [];
  for (let i = 0; i < 10000; i++) {
    const b = rx.tryReceive();
    if (!b.length) break;
    got.push(...b);
  }
  return got;
}

/** The frames of `loops` replays of the first `n` FRAMES, in order. */
const want = (loops = 1, n = N) => Array.from({ length: loops }, () => FRAMES.slice(0, n)).flat();

function final(stdout: string): { packets: number; seconds: number; loops: number } {
  const m = stdout.match(/^Sent (\d+) packets (\d+) bytes in ([\d.]+) seconds .*, (\d+) loops?/m);
  assert.ok(m, `no final line in: ${stdout}`);
  return { packets: +m[1], seconds: +m[3], loops: +m[4] };
}

Deno.test("vale replay: pcap and pcapng, every frame byte for byte, in order, in each timing mode", async (t) => {
  await using run = await tempRunDir();
  const dir = run.dir;
  Deno.writeFileSync(`${dir}/t.pcap`, pcapOf(1000)); // 200 frames over 0.2 s
  Deno.writeFileSync(`${dir}/t.pcapng`, pcapngOf(1000));
  Deno.writeFileSync(`${dir}/slow.pcap`, pcapOf(100_000)); // over 20 s
  using rx = openPort("vale0:rx@conf:rx-slots=4096", { runDir: dir });
  const replay = async (args: string[]) => {
    const r = await runTool("vale", ["replay", "vale0:tx", ...args], dir, 60000);
    assert.equal(r.code, 0, r.stderr);
    return { ...final(r.stdout), stderr: r.stderr, got: drain(rx) };
  };

  await t.step("pcap, original timing", async () => {
    const r = await replay([`${dir}/t.pcap`]);
    assert.deepEqual(r.got, want());
    assert.equal(r.packets, N);
    assert.ok(r.seconds >= 0.15, `${r.seconds} s for a 0.2 s capture`); // it waited
  });
  await t.step("pcapng, original timing", async () => {
    const r = await replay([`${dir}/t.pcapng`]);
    assert.deepEqual(r.got, want());
  });
  await t.step("original timing, two loops: each loop keeps the file's spacing", async () => {
    const r = await replay([`${dir}/t.pcap`, "-l", "2"]);
    assert.deepEqual(r.got, want(2));
    assert.equal(r.loops, 2);
    assert.ok(r.seconds >= 0.3, `${r.seconds} s for two loops of a 0.2 s capture`);
  });
  await t.step("standard input ('-'), pcapng", async () => {
    const out = await new Deno.Command("sh", {
      args: ["-c", `exec bin/vale replay vale0:tx - -t -q < '${dir}/t.pcapng'`],
      cwd: new URL("../", import.meta.url).pathname,
      env: { VALE_RUN_DIR: dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(final(new TextDecoder().decode(out.stdout)).packets, N);
    assert.deepEqual(drain(rx), want());
    // a stream cannot be read twice
    const twice = await new Deno.Command("sh", {
      args: ["-c", `exec bin/vale replay vale0:tx - -l 2 < '${dir}/t.pcapng'`],
      cwd: new URL("../", import.meta.url).pathname,
      env: { VALE_RUN_DIR: dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(twice.code, 1);
    assert.match(new TextDecoder().decode(twice.stderr), /can be read only once/);
  });
  await t.step("-x 100: a 20 s capture scaled down", async () => {
    const r = await replay([`${dir}/slow.pcap`, "-x", "100", "-q"]);
    assert.deepEqual(r.got, want());
    assert.ok(r.seconds >= 0.15 && r.seconds < 15, `${r.seconds} s`);
    assert.equal(r.stderr, ""); // -q
  });
  await t.step("-p 1000: a fixed packet rate", async () => {
    const r = await replay([`${dir}/slow.pcap`, "-p", "1000"]);
    assert.deepEqual(r.got, want());
    assert.ok(r.seconds >= 0.15 && r.seconds < 15, `${r.seconds} s`);
  });
  await t.step("-M 8: a fixed bit rate", async () => {
    const bits = FRAMES.reduce((a, f) => a + f.length * 8, 0);
    const r = await replay([`${dir}/slow.pcap`, "--mbps", "8"]);
    assert.deepEqual(r.got, want());
    const expect = bits / 8e6;
    assert.ok(r.seconds >= expect * 0.7 && r.seconds < expect + 15, `${r.seconds} s`);
  });
  await t.step("-t -l 3: as fast as possible, three loops, exact", async () => {
    const r = await replay([`${dir}/slow.pcap`, "-t", "-l", "3"]);
    assert.deepEqual(r.got, want(3));
    assert.equal(r.packets, 3 * N);
    assert.equal(r.loops, 3);
  });
  await t.step("pcapng -t -L 50: stops after exactly 50", async () => {
    const r = await replay([`${dir}/t.pcapng`, "-t", "-L", "50", "-l", "0"]);
    assert.deepEqual(r.got, want(1, 50));
    assert.equal(r.packets, 50);
  });
  await t.step("Ctrl-C on an endless replay: a clean stop and the exact count", async () => {
    const p = startTool(
      "vale",
      ["replay", "vale0:tx", `${dir}/t.pcap`, "-l", "0", "-p", "1500"],
      dir,
    );
    await p.waitFor(/looping until stopped/);
    await p.waitFor(/^vale replay: \d+ packets/m, 15000); // a progress line
    p.signal("SIGINT");
    const r = await p.within(15000);
    assert.equal(r.code, 0, r.stderr);
    const f = final(r.stdout);
    assert.match(r.stdout, /\(stopped\)/);
    const got = drain(rx);
    assert.ok(f.packets > 0 && f.packets < 4096, `${f.packets}`);
    assert.equal(got.length, f.packets);
    got.forEach((g, i) => assert.deepEqual(g, FRAMES[i % N], `frame ${i}`));
  });
  await t.step("bad usage and bad files: clear errors, nothing sent", async () => {
    const bad = async (args: string[], code: number, re: RegExp) => {
      const r = await runTool("vale", ["replay", ...args], dir, 30000);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, re);
    };
    await bad(["vale0:tx", `${dir}/t.pcap`, "-t", "-p", "5"], 1, /exclude each other/);
    await bad(["vale0:tx", `${dir}/t.pcap`, "-x", "0"], 1, /bad speed/);
    await bad(["vale0:tx"], 1, /Usage: vale replay/);
    await bad(["vale0:tx", `${dir}/none.pcap`], 2, /cannot open: no such file/);
    Deno.writeFileSync(`${dir}/cut.pcap`, pcapOf(10).subarray(0, 24 + 16 + 60 + 16 + 10));
    const r = await runTool("vale", ["replay", "vale0:tx", `${dir}/cut.pcap`, "-t"], dir, 30000);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /record body cut short/);
    assert.equal(final(r.stdout).packets, 1); // the packet before the damage
    assert.deepEqual(drain(rx), [FRAMES[0]]);
  });
});

Deno.test("pkt-gen -P FILE with several packets sends them in turn: exact counts per packet", async () => {
  await using run = await tempRunDir();
  const dir = run.dir;
  const kinds = FRAMES.slice(0, 3);
  Deno.writeFileSync(`${dir}/three.pcap`, encodePcap(kinds));
  Deno.writeFileSync(`${dir}/all.pcapng`, pcapngOf(10));
  using rx = openPort("vale0:rx@conf:rx-slots=4096", { runDir: dir });
  {
    const r = await runTool("pkt-gen", [
      "-i",
      "vale0:tx",
      "-f",
      "tx",
      "-n",
      "1000",
      "-P",
      `${dir}/three.pcap`,
    ], dir);
    assert.equal(r.code, 0, r.stderr);
    const got = drain(rx);
    assert.equal(got.length, 1000);
    got.forEach((g, i) => assert.deepEqual(g, kinds[i % 3], `packet ${i}`));
    // 334 of the first, 333 of each other
    const count = (k: number) => got.filter((g) => g[17] === kinds[k][17]).length;
    assert.deepEqual([count(0), count(1), count(2)], [334, 333, 333]);
    assert.match(r.stdout, /^Sent 1000 packets /m);
  }
  {
    // a pcapng, two threads on two ring pairs: each thread sends its share in turn
    const r = await runTool(
      "pkt-gen",
      [
        "-i",
        "vale0:tx2@conf:rings=2",
        "-f",
        "tx",
        "-p",
        "2",
        "-n",
        "200",
        "-P",
        `${dir}/all.pcapng`,
      ],
      dir,
    );
    assert.equal(r.code, 0, r.stderr);
    const got = drain(rx);
    assert.equal(got.length, 200);
    // each thread sent FRAMES[0..99] in order: every frame of the first 100 twice
    const seen = new Map<number, number>();
    for (const g of got) {
      const seq = new DataView(g.buffer, g.byteOffset).getUint32(14);
      assert.deepEqual(g, FRAMES[seq]);
      seen.set(seq, (seen.get(seq) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort((a, b) => a - b), [...Array(100).keys()]);
    assert.ok([...seen.values()].every((c) => c === 2));
  }
});
