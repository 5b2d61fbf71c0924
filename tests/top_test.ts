// `vale top` as users run it: in a real terminal (tmux: start it in a shell,
// send keys, capture the pane) with traffic on a switch — it shows the ports
// and their rates, sorts on keys, quits on q and gives the terminal back —
// and without a terminal, where it prints key=value lines or JSON snapshots
// with the switch's exact counters.
import assert from "node:assert/strict";
import { tempRunDir } from "./helpers/procs.ts";
import { runTool, startTool, until } from "./helpers/tools.ts";

const BIN = new URL("../bin/", import.meta.url).pathname;

function have(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

Deno.test("vale top without a terminal: key=value lines and JSON with exact counters", async () => {
  await using rd = await tempRunDir();
  const rx = startTool("pkt-gen", ["-i", "vale0:b", "-f", "rx"], rd.dir);
  try {
    await rx.waitFor(/Wait/);
    // a persistent sender port keeps its counters after pkt-gen exits
    for (const args of [["-n", "a"], ["-a", "vale0:a"]]) {
      const mk = await runTool("vale-ctl", args, rd.dir);
      assert.equal(mk.code, 0, mk.stderr);
    }
    const tx = await runTool(
      "pkt-gen",
      ["-i", "vale0:a", "-f", "tx", "-n", "5000", "-l", "60"],
      rd.dir,
    );
    assert.equal(tx.code, 0, tx.stderr);

    const json = await runTool("vale", ["top", "--json", "-n", "2", "-i", "0.2"], rd.dir);
    assert.equal(json.code, 0, json.stderr);
    const snaps = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(snaps.length, 2);
    const last = snaps[1];
    assert.ok(last.interval_s > 0.1, JSON.stringify(last));
    const sw = last.switches.find((s: { name: string }) => s.name === "vale0");
    const port = (n: string) => sw.ports.find((p: { name: string }) => p.name === n);
    assert.equal(port("a").tx_packets, 5000);
    // pkt-gen sends at full speed: what b's ring could not hold is counted
    assert.equal(port("b").rx_packets + port("b").drops.ring_full, 5000);
    assert.equal(port("a").kind, "persistent");
    assert.equal(port("a").owner_pid, 0);
    assert.ok(port("b").owner_pid > 0);
    assert.equal(port("b").rx_room, 1023);
    assert.equal(port("b").rx_pps, 0); // nothing moved during the interval
    assert.equal(sw.lookup, "learning");

    const plain = await runTool(
      "vale",
      ["top", "vale0", "-n", "1", "-i", "0.2", "-s", "name"],
      rd.dir,
    );
    assert.equal(plain.code, 0, plain.stderr);
    const lines = plain.stdout.trim().split("\n");
    assert.equal(lines.length, 2, plain.stdout);
    assert.match(lines[0], /^time=\S+ switch=vale0 port=a kind=persistent owner=0 rx_pps=0 /);
    assert.match(lines[1], / port=b .* ring_full=\d+ .* rx_queued=\d+ rx_room=1023 /);

    const bad = await runTool("vale", ["top", "nosuch"], rd.dir);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /vale top: no switch nosuch/);
    const badSort = await runTool("vale", ["top", "-s", "speed"], rd.dir);
    assert.equal(badSort.code, 1);
    assert.match(badSort.stderr, /bad sort key 'speed'/);
  } finally {
    rx.signal("SIGINT");
    await rx.within(10000);
  }
});

Deno.test({
  name: "vale top in a terminal (tmux): rates of a switch with traffic, sort keys, q restores",
  ignore: !have("tmux"),
  async fn() {
    await using rd = await tempRunDir();
    const sock = `vt${Deno.pid}`;
    const tmux = (...a: string[]) =>
      new Deno.Command("tmux", { args: ["-L", sock, ...a], stdout: "piped", stderr: "piped" })
        .outputSync();
    const pane = () => new TextDecoder().decode(tmux("capture-pane", "-p", "-t", "t").stdout);
    const fmt = (f: string) =>
      new TextDecoder().decode(tmux("display-message", "-p", "-t", "t", f).stdout).trim();
    const rx = startTool("pkt-gen", ["-i", "vale0:b", "-f", "rx"], rd.dir);
    const rx2 = startTool("pkt-gen", ["-i", "vale0:c", "-f", "rx"], rd.dir);
    let tx;
    try {
      await rx.waitFor(/Wait/);
      await rx2.waitFor(/Wait/);
      // a sends at 20 kpps for up to 20 s
      tx = startTool("pkt-gen", [
        "-i",
        "vale0:a",
        "-f",
        "tx",
        "-R",
        "20000",
        "-n",
        "400000",
        "-l",
        "60",
      ], rd.dir);
      const st = tmux(
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "150",
        "-y",
        "30",
        "-e",
        `VALE_RUN_DIR=${rd.dir}`,
        "sh",
      );
      assert.ok(st.success, new TextDecoder().decode(st.stderr));
      tmux("send-keys", "-t", "t", "echo before-top", "Enter");
      await until(() => pane().includes("before-top\n"), 5000, "the shell");
      tmux("send-keys", "-t", "t", `${BIN}vale top vale0 -i 0.5`, "Enter");
      // the screen: ports with rates; a sends, b receives
      const row = (name: string) => pane().split("\n").find((l) => l.startsWith(name + " "));
      await until(
        () => /^a\s+port\s+\d+\s+0\s+0\s+[\d.]+k\s/.test(row("a") ?? ""),
        20000,
        "a row with a's TX rate",
      );
      assert.equal(fmt("#{alternate_on}"), "1");
      assert.match(pane(), /switch vale0\s+lookup learning\s+macs \d\s+ports 3/);
      // a rate with its unit (how many bits a second depends on the machine's speed)
      assert.match(row("b")!, /^b\s+port\s+\d+\s+[\d.]+k\s+[\d.]+[kMG]\s+0\s+0\s/);
      // the frames are broadcast: b and c receive all of them
      assert.match(row("c")!, /^c\s+port\s+\d+\s+[\d.]+k\s/);
      const order = () =>
        pane().split("\n").map((l) => l.match(/^([abc]) /)?.[1]).filter(Boolean).join("");
      assert.match(pane(), /sort: pps /);
      tmux("send-keys", "-t", "t", "n");
      await until(() => pane().includes("sort: name "), 5000, "sorted by name");
      assert.equal(order(), "abc");
      tmux("send-keys", "-t", "t", "r");
      await until(() => pane().includes("sort: name (reversed)"), 5000, "reversed");
      assert.equal(order(), "cba");
      tmux("send-keys", "-t", "t", "q");
      // back to the shell, screen restored as it was before top
      await until(() => fmt("#{alternate_on}") === "0", 5000, "the normal screen");
      await until(() => fmt("#{pane_current_command}") === "sh", 5000, "top to exit");
      assert.match(pane(), /before-top/);
      assert.doesNotMatch(pane(), /switch vale0/);
      assert.equal(fmt("#{cursor_flag}"), "1");
    } finally {
      tmux("kill-server");
      tx?.signal("SIGINT");
      await tx?.within(10000);
      rx.signal("SIGINT");
      rx2.signal("SIGINT");
      await rx.within(10000);
      await rx2.within(10000);
    }
  },
});
