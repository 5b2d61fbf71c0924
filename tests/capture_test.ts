// vale capture as a user runs it: a subprocess writing a pcap that tcpdump
// and our reader agree on; Ctrl-C leaves a complete file.
import assert from "node:assert/strict";
import { readPcapFileSync } from "../lib/formats/pcap.ts";
import { tempRunDir } from "./helpers/procs.ts";

const root = new URL("..", import.meta.url).pathname;

function spawn(args: string[], runDir: string) {
  return new Deno.Command(`${root}bin/vale`, {
    args,
    env: { VALE_RUN_DIR: runDir },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function waitForPort(runDir: string, port: string) {
  for (let i = 0; i < 100; i++) {
    try {
      const info = new TextDecoder().decode(
        (await new Deno.Command(`${root}bin/vale-ctl`, {
          args: ["-l", "--json"],
          env: { VALE_RUN_DIR: runDir },
          stdout: "piped",
          stderr: "null",
        }).output()).stdout,
      );
      if (info.includes(`"${port}"`)) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} never appeared`);
}

const hasTcpdump = (() => {
  try {
    return new Deno.Command("tcpdump", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test("vale capture -c 100 writes exactly the 100 flooded frames", async () => {
  await using run = await tempRunDir();
  const file = `${run.dir}/cap.pcap`;
  const cap = spawn(["capture", "vale0:mon", "-w", file, "-c", "100"], run.dir);
  await waitForPort(run.dir, "mon");
  const tx = await new Deno.Command(`${root}bin/pkt-gen`, {
    args: ["-i", "vale0:a", "-f", "tx", "-n", "100", "-l", "128"],
    env: { VALE_RUN_DIR: run.dir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(tx.success);
  const st = await cap.output();
  assert.ok(st.success, new TextDecoder().decode(st.stderr));
  assert.match(new TextDecoder().decode(st.stderr), /100 packets captured/);
  const r = readPcapFileSync(file);
  assert.equal(r.error, null);
  assert.equal(r.records.length, 100);
  assert.ok(r.records.every((x) => x.capLen === 128));
  if (hasTcpdump) {
    const td = await new Deno.Command("tcpdump", {
      args: ["-nn", "-r", file],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    const lines = new TextDecoder().decode(td.stdout).trim().split("\n");
    assert.equal(lines.length, 100);
    assert.match(lines[0], /10\.0\.0\.1\.1234 > 10\.1\.0\.1\.1234: UDP/);
  } else {
    console.log("tcpdump cross-check skipped: tcpdump not installed");
  }
});

Deno.test("vale capture stops on SIGINT with a complete file", async () => {
  await using run = await tempRunDir();
  const file = `${run.dir}/cap.pcap`;
  const cap = spawn(["capture", "vale0:mon", "-w", file], run.dir);
  await waitForPort(run.dir, "mon");
  await new Deno.Command(`${root}bin/pkt-gen`, {
    args: ["-i", "vale0:a", "-f", "tx", "-n", "37", "-l", "60"],
    env: { VALE_RUN_DIR: run.dir },
    stdout: "null",
    stderr: "null",
  }).output();
  await new Promise((r) => setTimeout(r, 300));
  cap.kill("SIGINT");
  const st = await cap.output();
  assert.equal(st.code, 0);
  assert.match(new TextDecoder().decode(st.stderr), /37 packets captured/);
  assert.equal(readPcapFileSync(file).records.length, 37);
});

Deno.test("vale capture: bad arguments print usage and fail", async () => {
  await using run = await tempRunDir();
  const r = await spawn(["capture", "vale0:mon"], run.dir).output();
  assert.notEqual(r.code, 0);
  assert.match(new TextDecoder().decode(r.stderr), /Usage: vale capture/);
  const r2 = await spawn(["capture", "nic0", "-w", "x.pcap"], run.dir).output();
  assert.notEqual(r2.code, 0);
  assert.match(new TextDecoder().decode(r2.stderr), /invalid port name 'nic0'/);
});
