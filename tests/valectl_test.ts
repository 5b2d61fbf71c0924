// vale-ctl as a user runs it (bin/vale-ctl in a subprocess): netmap's
// persistent-port lifecycle and its error cases (double create, double
// attach, remove while attached), listings, info, MAC table, removing a switch.
import assert from "node:assert/strict";
import { buildUdpFrame } from "../lib/tools/packet.ts";
import { openPort } from "../lib/open.ts";
import { createPersistentPort } from "../lib/switch/control.ts";
import { tempRunDir } from "./helpers/procs.ts";
import { portOf, runTool, startTool, summary } from "./helpers/tools.ts";

const ctl = (dir: string, ...args: string[]) => runTool("vale-ctl", args, dir);

Deno.test("vale-ctl --help and wrong options", async () => {
  await using run = await tempRunDir();
  const h = await ctl(run.dir, "--help");
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^Usage:\nvale-ctl arguments\n/);
  for (
    const o of [
      "-g interface",
      "-d interface",
      "-a interface",
      "-h interface",
      "-n interface",
      "-r interface",
      "-l [vale-port]",
      "-C string",
      "-m memid",
      "--macs",
      "--remove-switch",
      "--json",
      "--lookup valeX:MODULE",
      "--lookup-config valeX:REQUEST",
    ]
  ) {
    assert.ok(h.stdout.includes(o), `documents ${o}`);
  }
  for (const args of [["-x"], ["-n"], ["-l", "vale0", "extra"], ["--bogus"]]) {
    const r = await ctl(run.dir, ...args);
    assert.equal(r.code, 1, args.join(" ")); // netmap's usage(1)
    assert.match(r.stderr, /Usage:\nvale-ctl arguments/);
  }
  // no arguments: list (nothing yet)
  const l = await ctl(run.dir);
  assert.deepEqual([l.code, l.stdout, l.stderr], [0, "", ""]);
});

Deno.test("vale-ctl: create / attach / detach / remove and netmap's error cases", async (t) => {
  await using run = await tempRunDir();
  await t.step("-n creates; creating twice fails with EEXIST", async () => {
    assert.deepEqual(await ctl(run.dir, "-n", "vi0"), { code: 0, stdout: "", stderr: "" });
    const r = await ctl(run.dir, "-n", "vi0");
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "failed to create vi0: File exists\n");
  });
  await t.step("a persistent port attached nowhere is not on any switch", async () => {
    assert.equal((await ctl(run.dir, "-l")).stdout, "");
    assert.match(
      (await ctl(run.dir, "-l", "-v")).stdout,
      /^vi0 persistent, attached to no switch$/m,
    );
    // netmap's six lines (its "rx_rings" line has no ':'); -v: vale's one line
    const g = await ctl(run.dir, "-g", "vi0");
    assert.match(
      g.stdout,
      /^memsize: {4}\d+\ntx_slots: {3}1024\nrx_slots: {3}1024\ntx_rings: {3}1\nrx_rings {4}1\nmem_id: {5}\d+\n$/,
    );
    assert.match(
      (await ctl(run.dir, "-v", "-g", "vi0")).stdout,
      /^vi0: memsize \d+ tx_slots 1024 rx_slots 1024 tx_rings 1 rx_rings 1 mem_id \d+ vnet_hdr_len 0 mtu 1514$/m,
    );
  });
  await t.step("-a attaches; attaching twice to a switch fails with EBUSY", async () => {
    assert.equal((await ctl(run.dir, "-a", "vale0:vi0")).code, 0);
    const r = await ctl(run.dir, "-a", "vale0:vi0");
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "failed to attach vale0:vi0: Device or resource busy\n");
    // netmap's listing formats
    const l = await ctl(run.dir, "-l");
    assert.deepEqual([l.code, l.stdout, l.stderr], [0, "vale0:vi0 bridge_idx 0 port_idx 0\n", ""]);
    assert.equal(
      (await ctl(run.dir, "-l", "vale0:vi0")).stdout,
      "bridge_idx: 0\nport_idx:   0\n",
    );
    assert.match(
      (await ctl(run.dir, "-l", "-v")).stdout,
      new RegExp(
        "^vale0:vi0 bridge:0 port:0 pid:- tx:0 rx:0 drops:0 tx_bytes:0 rx_bytes:0 ring_full:0" +
          " bad_slot:0 no_dest:0 lookup:0 bad_vnet:0 too_big:0 sync_errors:0 kind:persistent mem_id:\\d+" +
          ' info:"persistent \\(vale-ctl -a\\)" vnet_hdr:0 mtu:1514\n$',
      ),
    );
  });
  await t.step("remove while attached fails with EBUSY", async () => {
    const r = await ctl(run.dir, "-r", "vi0");
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "failed to remove vi0: Device or resource busy\n");
  });
  await t.step("the attached port is a port of vale0 that outlives its users", async () => {
    const rx = startTool("pkt-gen", ["-i", "vale0:vi0", "-f", "rx", "-n", "100"], run.dir);
    await rx.waitFor(/reading from/);
    // in use: detaching it fails, the listing shows its owner
    const d = await ctl(run.dir, "-d", "vale0:vi0");
    assert.equal(d.stderr, "failed to detach vale0:vi0: Device or resource busy\n");
    assert.match((await ctl(run.dir, "-l", "-v")).stdout, /^vale0:vi0 bridge:0 port:0 pid:\d+ /);
    const tx = await runTool("pkt-gen", [
      "-i",
      "vale0:tx",
      "-f",
      "tx",
      "-n",
      "100",
      "-S",
      "02:00:00:00:00:07",
    ], run.dir);
    assert.equal(summary(tx.stdout)!.pkts, 100);
    assert.equal(summary((await rx.within()).stdout)!.pkts, 100);
    const p = portOf(run.dir, "vale0", "vi0")!;
    assert.ok(p.persistent && !p.in_use, "still there, nobody has it open");
    assert.equal(p.counters.rx_packets, 100);
    assert.match(
      (await ctl(run.dir, "-l", "-v")).stdout,
      /^vale0:vi0 bridge:0 port:0 pid:- tx:0 rx:100 drops:0 /,
    );
  });
  await t.step(
    "-d detaches (it still exists), -r removes; both fail when there is nothing",
    async () => {
      assert.equal((await ctl(run.dir, "-d", "vale0:vi0")).code, 0);
      assert.equal(portOf(run.dir, "vale0", "vi0"), undefined);
      assert.deepEqual([...Deno.readDirSync(run.dir)].map((e) => e.name), ["persistent-ports"]);
      const d = await ctl(run.dir, "-d", "vale0:vi0");
      assert.equal(d.stderr, "failed to detach vale0:vi0: No such device or address\n");
      // attach again after a detach, detach again
      assert.equal((await ctl(run.dir, "-a", "vale0:vi0")).code, 0);
      assert.equal((await ctl(run.dir, "-d", "vale0:vi0")).code, 0);
      assert.equal((await ctl(run.dir, "-r", "vi0")).code, 0);
      const r = await ctl(run.dir, "-r", "vi0");
      assert.equal(r.stderr, "failed to remove vi0: No such device or address\n");
      assert.deepEqual([...Deno.readDirSync(run.dir)], [], "nothing left");
    },
  );
  await t.step("-C sets the geometry of -n; bad names and geometry are EINVAL", async () => {
    assert.equal((await ctl(run.dir, "-n", "vi1", "-C", "256,512,2")).code, 0);
    assert.match(
      (await ctl(run.dir, "-g", "vi1")).stdout,
      /^tx_slots: {3}256\nrx_slots: {3}512\ntx_rings: {3}2\nrx_rings {4}2$/m,
    );
    assert.equal((await ctl(run.dir, "-a", "vale3:vi1")).code, 0);
    assert.match(
      (await ctl(run.dir, "-v", "-g", "vale3:vi1")).stdout,
      /^vale3:vi1: .*tx_slots 256 rx_slots 512 tx_rings 2/,
    );
    assert.equal((await ctl(run.dir, "-d", "vale3:vi1")).code, 0);
    assert.equal((await ctl(run.dir, "-r", "vi1")).code, 0);
    assert.equal(
      (await ctl(run.dir, "-n", "vi2", "-C", "5")).stderr,
      "failed to create vi2: Invalid argument\n",
    );
    assert.equal(
      (await ctl(run.dir, "-n", "bad name!")).stderr,
      "failed to create bad name!: Invalid argument\n",
    );
  });
  await t.step(
    "an ephemeral port cannot be detached; unknown names cannot be attached",
    async () => {
      using _p = openPort("vale0:eph", { runDir: run.dir });
      assert.equal(
        (await ctl(run.dir, "-d", "vale0:eph")).stderr,
        "failed to detach vale0:eph: Invalid argument\n",
      );
      // neither a persistent port nor a kernel interface (those: tests/kernel_attach_test.ts)
      const none = await ctl(run.dir, "-a", "vale0:nosuchif0");
      assert.equal(none.code, 1);
      assert.match(none.stderr, /^failed to attach vale0:nosuchif0: No such device or address$/m);
      const p = await ctl(run.dir, "-p", "vale0:eph");
      assert.match(p.stderr, /^failed to enable polling on vale0:eph: Operation not supported\n/);
    },
  );
});

Deno.test("vale-ctl listings: owners, counters, drops, MAC table, JSON, info, removing a switch", async () => {
  await using run = await tempRunDir();
  assert.equal((await ctl(run.dir, "-n", "vi5")).code, 0);
  assert.equal((await ctl(run.dir, "-a", "vale0:vi5")).code, 0);
  // this process has vale0:a open and announces its MAC with one broadcast
  using a = openPort("vale0:a", { runDir: run.dir });
  a.send(buildUdpFrame({ srcMac: "02:00:00:00:00:0a" }));
  a.txsync();
  // 2000 broadcasts from vale0:c; nobody reads vi5 or a: 1023 fit in each RX ring
  const tx = await runTool(
    "pkt-gen",
    ["-i", "vale0:c", "-f", "tx", "-n", "2000", "-R", "20000"],
    run.dir,
  );
  assert.equal(tx.code, 0, tx.stderr);

  const l = await ctl(run.dir, "-l");
  assert.equal(l.code, 0);
  assert.equal(l.stdout, "vale0:vi5 bridge_idx 0 port_idx 0\nvale0:a bridge_idx 0 port_idx 1\n");
  const lv = await ctl(run.dir, "-l", "-v");
  assert.match(lv.stdout, /^vale0:vi5 bridge:0 port:0 pid:- tx:0 rx:1023 drops:978 /m);
  assert.match(
    lv.stdout,
    new RegExp(`^vale0:a bridge:0 port:1 pid:${Deno.pid} tx:1 rx:1023 drops:977 `, "m"),
  );
  const v = await ctl(run.dir, "-l", "-v", "vale0:a");
  assert.match(
    v.stdout,
    / rx_bytes:61380 ring_full:977 bad_slot:0 no_dest:0 lookup:0 .*kind:ephemeral/,
  );
  assert.match((await ctl(run.dir, "-l", "-v")).stdout, /^vale0:vi5 .*kind:persistent/m);
  assert.equal((await ctl(run.dir, "-l", "vale0")).stdout, l.stdout);

  const j = JSON.parse((await ctl(run.dir, "-l", "--json")).stdout);
  assert.equal(j.switches.length, 1);
  assert.deepEqual([j.switches[0].name, j.switches[0].bridge], ["vale0", 0]);
  const ja = j.switches[0].ports.find((p: { name: string }) => p.name === "a");
  assert.equal(ja.owner_pid, Deno.pid);
  assert.equal(ja.counters.drops.ring_full, 977);
  assert.deepEqual(
    j.persistent.map((p: { name: string; attached_to: string }) => [p.name, p.attached_to]),
    [["vi5", "vale0"]],
  );

  // the learned MAC of vale0:a, with its age (brctl showmacs style)
  const m = await ctl(run.dir, "--macs", "vale0");
  assert.match(m.stdout, /^port no\tmac addr\t\tport name\tageing timer\n/);
  assert.match(m.stdout, /^ {2}1\t02:00:00:00:00:0a\ta {14}\t {3}\d$/m);
  const mj = JSON.parse((await ctl(run.dir, "--macs=vale0", "--json")).stdout);
  assert.equal(mj.switch, "vale0");
  assert.ok(
    mj.macs.some((e: { mac: string; port_name: string; age_s: number }) =>
      e.mac === "02:00:00:00:00:0a" && e.port_name === "a" && e.age_s >= 0
    ),
  );

  // -g of an existing port, and of one that does not exist (created for the question, as netmap)
  assert.match(
    (await ctl(run.dir, "-v", "-g", "vale0:a")).stdout,
    /^vale0:a: memsize \d+ tx_slots 1024 rx_slots 1024 tx_rings 1 rx_rings 1 mem_id 1 vnet_hdr_len 0 mtu 1514\n$/,
  );
  assert.match(
    (await ctl(run.dir, "-g", "vale0:a")).stdout,
    /^memsize: {4}\d+\n.*\nmem_id: {5}1\n$/s,
  );
  const g = JSON.parse((await ctl(run.dir, "-g", "vale9:new", "-C", "64", "--json")).stdout);
  assert.deepEqual([g.tx_slots, g.rx_slots, g.tx_rings], [64, 64, 1]);
  assert.ok(!Deno.readDirSync(run.dir).some((e) => e.name === "vale9"), "and gone again");
  assert.equal(
    (await ctl(run.dir, "-l", "vale0:zz")).stderr,
    "failed to list vale0:zz: No such file or directory\n",
  );

  // removing a switch: refused while a port is open, then everything goes
  const busy = await ctl(run.dir, "--remove-switch", "vale0");
  assert.equal(busy.stderr, "failed to remove switch vale0: Device or resource busy\n");
  a.close();
  assert.equal((await ctl(run.dir, "--remove-switch", "vale0")).code, 0);
  assert.ok(!Deno.readDirSync(run.dir).some((e) => e.name === "vale0"));
  assert.equal(
    (await ctl(run.dir, "--remove-switch", "vale0")).stderr,
    "failed to remove switch vale0: No such device or address\n",
  );
  // the persistent port survives its switch, attached nowhere, and can be removed
  assert.match((await ctl(run.dir, "-l", "-v")).stdout, /^vi5 persistent, attached to no switch$/m);
  assert.equal((await ctl(run.dir, "-r", "vi5")).code, 0);
  assert.deepEqual([...Deno.readDirSync(run.dir)], []);
});

Deno.test("vale-ctl: netmap's functional tests 009-011 (persistent port on two switches)", async () => {
  await using run = await tempRunDir();
  const ok = async (...a: string[]) =>
    assert.equal((await ctl(run.dir, ...a)).code, 0, a.join(" "));
  const fails = async (...a: string[]) => {
    const r = await ctl(run.dir, ...a);
    assert.equal(r.code, 1, a.join(" "));
    return r.stderr;
  };
  // 009: destroy
  await ok("-n", "v0");
  await ok("-r", "v0");
  await ok("-n", "v0");
  await ok("-a", "vale0A:v0");
  assert.equal(await fails("-r", "v0"), "failed to remove v0: Device or resource busy\n");
  await ok("-a", "vale0B:v0");
  await fails("-r", "v0");
  assert.equal(
    (await ctl(run.dir, "-l")).stdout,
    "vale0A:v0 bridge_idx 0 port_idx 0\nvale0B:v0 bridge_idx 1 port_idx 0\n",
  );
  const j = JSON.parse((await ctl(run.dir, "-l", "--json")).stdout);
  assert.deepEqual(j.persistent[0].attachments, ["vale0A", "vale0B"]);
  await ok("-d", "vale0B:v0");
  await fails("-r", "v0");
  await ok("-d", "vale0A:v0");
  await ok("-r", "v0");
  // 010: double attach (the same switch twice fails, a second switch works)
  await ok("-n", "v0");
  await ok("-a", "vale0A:v0");
  assert.equal(
    await fails("-a", "vale0A:v0"),
    "failed to attach vale0A:v0: Device or resource busy\n",
  );
  await ok("-a", "vale0B:v0");
  // 011: double create, also while attached
  await ok("-d", "vale0A:v0");
  await ok("-d", "vale0B:v0");
  assert.equal(await fails("-n", "v0"), "failed to create v0: File exists\n");
  await ok("-a", "vale0A:v0");
  await fails("-n", "v0");
  await ok("-a", "vale0B:v0");
  await fails("-n", "v0");
  // both attachments carry traffic as ports of their own switch
  using x = openPort("vale0B:x", { runDir: run.dir });
  x.send(buildUdpFrame({ srcMac: "02:00:00:00:00:0b" }));
  x.txsync();
  assert.equal(portOf(run.dir, "vale0B", "v0")!.counters.rx_packets, 1);
  assert.equal(portOf(run.dir, "vale0A", "v0")!.counters.rx_packets, 0);
});

Deno.test("vale-ctl: 2012 names (vale-a:1, vale-foo) and the old holding switch", async (t) => {
  await using run = await tempRunDir();
  await t.step("switches named vale-a and vale-persistent are the user's", async () => {
    assert.equal((await ctl(run.dir, "-n", "vi0")).code, 0);
    assert.equal((await ctl(run.dir, "-a", "vale-a:vi0")).code, 0);
    assert.equal((await ctl(run.dir, "-a", "vale-persistent:vi0")).code, 0);
    assert.equal(
      (await ctl(run.dir, "-l")).stdout,
      "vale-a:vi0 bridge_idx 0 port_idx 0\nvale-persistent:vi0 bridge_idx 1 port_idx 0\n",
    );
    assert.equal(
      (await ctl(run.dir, "-l", "vale-a")).stdout,
      "vale-a:vi0 bridge_idx 0 port_idx 0\n",
    );
    assert.equal((await ctl(run.dir, "-l", "vale-a:vi0")).stdout, "bridge_idx: 0\nport_idx:   0\n");
    assert.equal((await ctl(run.dir, "-d", "vale-persistent:vi0")).code, 0);
    assert.equal((await ctl(run.dir, "-d", "vale-a:vi0")).code, 0);
    assert.equal((await ctl(run.dir, "-r", "vi0")).code, 0);
  });
  await t.step("vale-foo is port vale-foo of switch vale", async () => {
    using p = openPort("vale-foo", { runDir: run.dir });
    assert.equal(p.name, "vale:vale-foo");
    assert.equal((await ctl(run.dir, "-l")).stdout, "vale:vale-foo bridge_idx 0 port_idx 0\n");
    // no switch vale-foo: the port of that name
    assert.equal((await ctl(run.dir, "-l", "vale-foo")).stdout, "bridge_idx: 0\nport_idx:   0\n");
    assert.match((await ctl(run.dir, "-g", "vale-foo")).stdout, /^memsize: {4}\d+\n/);
    assert.equal(
      (await ctl(run.dir, "-l", "vale-bar")).stderr,
      "failed to list vale-bar: No such file or directory\n",
    );
    const bad = await ctl(run.dir, "-l", "foo");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^invalid vale port name: 'foo'\nUsage:/);
    assert.equal(
      (await ctl(run.dir, "-a", "vale a:vi0")).stderr,
      "failed to attach vale a:vi0: Invalid argument\n",
    );
  });
  await t.step("a run directory of an older vale: its holding switch is migrated", async () => {
    // what vale before the 2012 names left: persistent ports on switch vale-persistent
    createPersistentPort("vale-persistent:old0", { runDir: run.dir });
    const l = await ctl(run.dir, "-l", "-v");
    assert.equal(l.stdout, "old0 persistent, attached to no switch\n");
    const dirs = [...Deno.readDirSync(run.dir)].map((e) => e.name);
    assert.ok(dirs.includes("persistent-ports") && !dirs.includes("vale-persistent"), `${dirs}`);
    assert.equal((await ctl(run.dir, "-a", "vale0:old0")).code, 0);
    assert.equal((await ctl(run.dir, "-d", "vale0:old0")).code, 0);
    assert.equal((await ctl(run.dir, "-r", "old0")).code, 0);
    // a user's own vale-persistent (an ephemeral port on it) is left alone
    using _u = openPort("vale-persistent:u", { runDir: run.dir });
    assert.equal(
      (await ctl(run.dir, "-l")).stdout,
      "vale-persistent:u bridge_idx 0 port_idx 0\n",
    );
  });
});

Deno.test("vale-ctl: lookup modules and batch size from the command line (mSwitch tutorial)", async (t) => {
  await using run = await tempRunDir();
  const o = { runDir: run.dir };
  using a = openPort("vale0:a", o);
  using b = openPort("vale0:b", o);
  using c = openPort("vale0:c", o);
  const ip = buildUdpFrame({ srcMac: "02:00:00:00:00:0a" }); // IPv4, broadcast destination
  const arp = new Uint8Array(ip);
  arp[12] = 0x08;
  arp[13] = 0x06;
  const counts = () => [a, b, c].map((p) => p.tryReceive().length);
  await t.step("built-in portmap, configured with --lookup-config", async () => {
    assert.equal((await ctl(run.dir, "--lookup", "vale0:portmap")).code, 0);
    const r = await ctl(run.dir, "--lookup-config", `vale0:map ${a.index} ${c.index}`);
    assert.deepEqual([r.code, r.stdout], [0, `map ${a.index} -> ${c.index}\n`]);
    a.send(ip);
    a.txsync();
    assert.deepEqual(counts(), [0, 0, 1]);
    const bad = await ctl(run.dir, "--lookup-config", "vale0:bogus");
    assert.equal(
      bad.stderr,
      "failed to configure the lookup module of vale0:bogus: Invalid argument\n",
    );
  });
  await t.step("the tutorial's module as a shared object", async () => {
    const so = `${run.dir}/lookup_ipv4.so`;
    const cc = await new Deno.Command("cc", {
      args: [
        "-shared",
        "-fPIC",
        "-O2",
        `-I${new URL("../c-src/include", import.meta.url).pathname}`,
        "-o",
        so,
        new URL("./data/lookup_ipv4.c", import.meta.url).pathname,
      ],
    }).output();
    assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    assert.equal((await ctl(run.dir, "--lookup", `vale0:${so}`)).code, 0);
    assert.equal(JSON.parse((await ctl(run.dir, "-l", "vale0", "--json")).stdout).lookup, so);
    a.send(ip); // IPv4 from a (index 0) -> index 1 = b
    a.txsync();
    a.send(arp); // anything else: broadcast
    a.txsync();
    assert.deepEqual(counts(), [0, 2, 1]);
    const r = await ctl(run.dir, "--lookup-config", `vale0:route ${a.index} ${c.index}`);
    assert.equal(r.stdout, `route ${a.index} -> ${c.index}\n`);
    a.send(ip);
    a.txsync();
    assert.deepEqual(counts(), [0, 0, 1]);
    const none = await ctl(run.dir, "--lookup", "vale0:/nonexistent/x.so");
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^failed to set the lookup module of vale0:\/nonexistent\/x\.so: /);
    // a module anyone could replace is refused, with the reason (c-src/core/fsafe.c)
    Deno.mkdirSync(`${run.dir}/pub`, { mode: 0o777 });
    Deno.chmodSync(`${run.dir}/pub`, 0o777);
    Deno.copyFileSync(so, `${run.dir}/pub/l.so`);
    const open = await ctl(run.dir, "--lookup", `vale0:${run.dir}/pub/l.so`);
    assert.equal(open.code, 1);
    assert.equal(
      open.stderr.split("\n")[0],
      `failed to set the lookup module of vale0:${run.dir}/pub/l.so: Permission denied`,
    );
    assert.match(
      open.stderr,
      /is writable by everyone .*a module must be writable only by you or root/,
    );
    assert.equal(JSON.parse((await ctl(run.dir, "-l", "vale0", "--json")).stdout).lookup, so);
    assert.equal((await ctl(run.dir, "--lookup", "vale0:learning")).code, 0);
    const usage = await ctl(run.dir, "-v", "--lookup", "nosuch");
    assert.equal(
      usage.stderr,
      "failed to set the lookup module of nosuch: Invalid argument\n" +
        "vale-ctl: expected SWITCH:MODULE (e.g. vale0:MODULE), got 'nosuch'\n",
    );
  });
  await t.step("--batch: packets per flush, exact delivery at any size", async () => {
    const info = async () => JSON.parse((await ctl(run.dir, "-l", "vale0", "--json")).stdout);
    assert.equal((await info()).batch, 1024);
    for (const n of [1, 7, 0]) {
      assert.equal((await ctl(run.dir, "--batch", `vale0:${n}`)).code, 0);
      assert.equal((await info()).batch, n || 1024);
      b.send(buildUdpFrame({ srcMac: "02:00:00:00:00:0b" })); // a learns where b is
      b.txsync();
      counts();
      const frames = Array.from(
        { length: 500 },
        (_, i) =>
          buildUdpFrame({
            srcMac: "02:00:00:00:00:0a",
            dstMac: "02:00:00:00:00:0b",
            payload: new Uint8Array([i & 255]),
          }),
      );
      assert.equal(a.sendBatch(frames), 500);
      a.txsync();
      assert.deepEqual(counts(), [0, 500, 0], `batch ${n}`);
    }
    for (const bad of ["vale0:1025", "vale0:x", "vale0:-1"]) {
      const r = await ctl(run.dir, "--batch", bad);
      assert.equal(r.code, 1, bad);
      assert.match(
        r.stderr,
        new RegExp(`^failed to set the batch size of ${bad}: Invalid argument\n`),
      );
    }
    assert.equal(
      (await ctl(run.dir, "--batch", "vale9:8")).stderr,
      "failed to set the batch size of vale9:8: No such device or address\n",
    );
  });
});
