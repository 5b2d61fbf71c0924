// Users and files (docs/threat-model.md, "Users and files"): a switch is
// private to its creator unless shared with a group; root never follows a
// symlink nor uses another user's switch; lookup modules chosen by others are
// never loaded; switches whose processes were killed disappear.
//
// The other user is uid 65534 (nobody), run with setpriv; its side is a small
// C program (tests/data/fsiso_peer.c) built against build/libvale.so, since
// root's Deno cache is not readable by other users. Needs root.
import assert from "node:assert/strict";
import { openPort } from "../lib/open.ts";
import { listSwitches, setLookup, switchInfo } from "../lib/switch/control.ts";
import { ValeError } from "../lib/errors.ts";
import { listAttachments, secureAttachDir } from "../lib/attach/attach.ts";
import { BROADCAST, mac, makeFrame } from "./helpers/frames.ts";
import { runTool } from "./helpers/tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const UID = 65534;
const GID = 4242; // a group with no /etc/group entry: setpriv takes numbers
const isRoot = Deno.uid() === 0;

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const d = new TextDecoder();
  return { ok: r.success, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

/** Run the peer (or any command) as uid 65534 with the given groups. */
async function asUser(groups: number[], args: string[]): Promise<{ ok: boolean; out: string }> {
  return await sh("setpriv", [
    `--reuid=${UID}`,
    `--regid=${groups[0]}`,
    `--groups=${groups.join(",")}`,
    "--",
    ...args,
  ]);
}

interface Lab {
  base: string;
  run: string; // sticky shared run directory (01777, root's), like /dev/shm/vale
  peer: string; // the compiled peer
  victim: string; // a root-owned file that must never change
  victimText: string;
  userDir: string; // a directory of uid 65534
}

async function lab(): Promise<Lab> {
  const base = await Deno.makeTempDir({ prefix: "fsiso-" });
  await Deno.chmod(base, 0o755);
  const run = `${base}/run`;
  await Deno.mkdir(run);
  await Deno.chmod(run, 0o1777);
  const bin = `${base}/bin`;
  await Deno.mkdir(bin);
  await Deno.chmod(bin, 0o755);
  const peer = `${bin}/fsiso_peer`;
  const cc = await sh("cc", [
    "-O1",
    "-o",
    peer,
    `${ROOT}tests/data/fsiso_peer.c`,
    `-L${ROOT}build`,
    "-lvale",
    `-Wl,-rpath,${ROOT}build`,
  ]);
  assert.ok(cc.ok, cc.out);
  const victim = `${base}/victim.txt`;
  const victimText = "root's file: must stay byte-for-byte intact\n";
  await Deno.writeTextFile(victim, victimText);
  const userDir = `${base}/user`;
  await Deno.mkdir(userDir);
  await Deno.chown(userDir, UID, UID);
  return { base, run, peer, victim, victimText, userDir };
}

function refused(fn: () => unknown, code: string, re: RegExp): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ValeError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return e.message;
  }
  assert.fail("expected a refusal");
}

function mode(path: string): number {
  return Deno.lstatSync(path).mode! & 0o7777;
}

Deno.test({
  name: "users and files: private switches, symlinks, other users' switches and modules",
  ignore: !isRoot,
  async fn(t) {
    const L = await lab();
    const msgs: string[] = [];
    try {
      await t.step("a default switch is private: 0700 directory, 0600 files", () => {
        using a = openPort("vale0:a", { runDir: L.run });
        assert.ok(a.index >= 0);
        const dir = `${L.run}/vale0`;
        assert.equal(mode(dir), 0o700);
        for (const f of Deno.readDirSync(dir)) {
          assert.equal(mode(`${dir}/${f.name}`), 0o600, f.name);
        }
        assert.ok(Deno.readDirSync(dir).some((f) => f.name === "ctl"));
      });

      await t.step("another user can neither join nor read root's switch", async () => {
        using _a = openPort("vale0:a", { runDir: L.run });
        const o = await asUser([UID], [L.peer, "open", L.run, "vale0", "x"]);
        assert.ok(!o.ok, o.out);
        assert.match(
          o.out,
          /^err 13 switch vale0 .* belongs to uid 0 and is not shared with a group uid 65534 is in/,
        );
        msgs.push(o.out.trim());
        for (const f of ["ctl", "p0.1"]) {
          const r = await asUser([UID], [L.peer, "read", `${L.run}/vale0/${f}`]);
          assert.match(r.out, /^err 13 /, `${f}: ${r.out}`);
        }
        // the files are 0600 on their own too: readable neither through a traversable directory
        await Deno.chmod(`${L.run}/vale0`, 0o711);
        try {
          for (const f of ["ctl", "p0.1"]) {
            const r = await asUser([UID], [L.peer, "read", `${L.run}/vale0/${f}`]);
            assert.match(r.out, /^err 13 /, `${f}: ${r.out}`);
          }
        } finally {
          await Deno.chmod(`${L.run}/vale0`, 0o700);
        }
      });

      await t.step("a custom run directory that does not exist is created 0700", () => {
        const rd = `${L.base}/new/run`;
        using _a = openPort("vale1:a", { runDir: rd });
        assert.equal(mode(rd), 0o700);
        assert.equal(mode(`${L.base}/new`), 0o700);
      });

      await t.step(
        "symlink attack: ctl planted in a switch directory of another user",
        async () => {
          const r = await asUser([UID], [
            "sh",
            "-c",
            `mkdir -m 777 ${L.run}/vale3 && ln -s ${L.victim} ${L.run}/vale3/ctl`,
          ]);
          assert.ok(r.ok, r.out);
          msgs.push(refused(
            () => openPort("vale3:a", { runDir: L.run }),
            "EACCES",
            /switch vale3 \(.*\/vale3\) belongs to uid 65534, refusing to use it as root \(remove it or choose another VALE_RUN_DIR\)/,
          ));
          await Deno.chmod(`${L.run}/vale3`, 0o755); // also when it is not writable by others
          refused(
            () => openPort("vale3:a", { runDir: L.run }),
            "EACCES",
            /switch vale3 \(.*\/vale3\) belongs to uid 65534, refusing to use it as root/,
          );
          assert.equal(await Deno.readTextFile(L.victim), L.victimText);
        },
      );

      await t.step("a switch directory pre-created (empty) by another user", async () => {
        const r = await asUser([UID], ["mkdir", "-m", "700", `${L.run}/vale4`]);
        assert.ok(r.ok, r.out);
        refused(() => openPort("vale4:a", { runDir: L.run }), "EACCES", /belongs to uid 65534/);
        assert.deepEqual([...Deno.readDirSync(`${L.run}/vale4`)], []);
      });

      await t.step("symlinks and hard links inside root's own switch are refused", async () => {
        const d = `${L.run}/vale5`;
        await Deno.mkdir(d, { mode: 0o700 });
        await Deno.symlink(L.victim, `${d}/ctl`);
        msgs.push(refused(
          () => openPort("vale5:a", { runDir: L.run }),
          "ELOOP",
          /vale5\/ctl is a symbolic link; vale does not follow symlinks/,
        ));
        await Deno.remove(`${d}/ctl`);
        await Deno.link(L.victim, `${d}/ctl`);
        msgs.push(refused(
          () => openPort("vale5:a", { runDir: L.run }),
          "EACCES",
          /vale5\/ctl refused: expected a regular file with one link.* found a regular file, 2 links/,
        ));
        await Deno.remove(d, { recursive: true });
        assert.equal(await Deno.readTextFile(L.victim), L.victimText);
      });

      await t.step("a run directory that is a symlink into the user's directory", async () => {
        const sticky = `${L.base}/sticky`;
        await Deno.mkdir(sticky);
        await Deno.chmod(sticky, 0o1777);
        const r = await asUser([UID], ["ln", "-s", L.userDir, `${sticky}/run`]);
        assert.ok(r.ok, r.out);
        msgs.push(refused(
          () => openPort("vale0:a", { runDir: `${sticky}/run` }),
          "ELOOP",
          /run directory .*\/sticky\/run: .*\/sticky\/run is a symbolic link \(owned by uid 65534\); vale does not follow symlinks/,
        ));
        // and the user's directory itself
        msgs.push(refused(
          () => openPort("vale0:a", { runDir: L.userDir }),
          "EACCES",
          /run directory .*\/user: .*\/user belongs to uid 65534 \(expected root\); refusing to use it as root/,
        ));
        assert.deepEqual([...Deno.readDirSync(L.userDir)], [], "nothing landed there");
      });

      await t.step("kernel attachments' state directory planted as a symlink", async () => {
        const r = await asUser([UID], ["ln", "-s", L.userDir, `${L.run}/.attach`]);
        assert.ok(r.ok, r.out);
        msgs.push(refused(
          () => secureAttachDir("vale0", L.run, true),
          "ELOOP",
          /\/run\/\.attach is a symbolic link \(owned by uid 65534\)/,
        ));
        assert.deepEqual(listAttachments(undefined, { runDir: L.run }), []);
        assert.deepEqual([...Deno.readDirSync(L.userDir)], [], "nothing landed there");
        await Deno.remove(`${L.run}/.attach`);
        assert.ok(secureAttachDir("vale0", L.run, true));
        assert.equal(mode(`${L.run}/.attach/vale0`), 0o700);
      });

      // the planted module
      const marker = `${L.base}/MARKER`;
      const so = `${L.userDir}/planted.so`;
      const cc = await sh("cc", [
        "-shared",
        "-fPIC",
        `-I${ROOT}c-src/include`,
        `-DMARKER="${marker}"`,
        "-o",
        so,
        `${ROOT}tests/data/planted_module.c`,
      ]);
      assert.ok(cc.ok, cc.out);
      await Deno.chown(so, UID, UID);

      await t.step(
        "module: the user's own switch with its module: root will not open it",
        async () => {
          const r = await asUser([UID], [L.peer, "setlookup", L.run, "vale6", so]);
          assert.match(r.out, /^ok lookup set/);
          refused(() => openPort("vale6:a", { runDir: L.run }), "EACCES", /belongs to uid 65534/);
          assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
        },
      );

      await t.step("module: root does not set a module of another user", () => {
        using _a = openPort("vale7:a", { runDir: L.run });
        msgs.push(refused(
          () => setLookup("vale7", so, { runDir: L.run }),
          "EACCES",
          /lookup module .*planted\.so refused: .*\/user belongs to uid 65534/,
        ));
        assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
      });

      await t.step("module: an object of another user in root's directory", async () => {
        using _a = openPort("vale7:a", { runDir: L.run });
        const so2 = `${L.base}/theirs.so`;
        await Deno.copyFile(so, so2);
        await Deno.chown(so2, UID, UID);
        msgs.push(refused(
          () => setLookup("vale7", so2, { runDir: L.run }),
          "EPERM",
          /lookup module .*theirs\.so refused: it belongs to uid 65534 \(expected root\)/,
        ));
        await Deno.chown(so2, 0, 0);
        await Deno.chmod(so2, 0o666);
        refused(() => setLookup("vale7", so2, { runDir: L.run }), "EPERM", /writable by everyone/);
        await Deno.chmod(so2, 0o755);
        setLookup("vale7", so2, { runDir: L.run }); // root's own, unwritable by others: fine
        assert.ok(Deno.statSync(marker).isFile, "root's own module runs");
        await Deno.remove(marker);
        setLookup("vale7", "learning", { runDir: L.run });
      });

      await t.step("vale-ctl: --group shares what -a creates; refusals are explained", async () => {
        let r = await runTool("vale-ctl", ["-n", "vi0"], L.run);
        assert.equal(r.code, 0, r.stderr);
        r = await runTool("vale-ctl", ["-a", "valeG:vi0", "--group", String(GID)], L.run);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(mode(`${L.run}/valeG`), 0o2770);
        assert.equal(Deno.statSync(`${L.run}/valeG`).gid, GID);
        r = await runTool("vale-ctl", ["-d", "valeG:vi0"], L.run);
        assert.equal(r.code, 0, r.stderr);
        r = await runTool("vale-ctl", ["-a", "vale4:vi0"], L.run); // vale4: the user's directory
        assert.equal(r.code, 1);
        assert.match(r.stderr, /failed to attach vale4:vi0: Permission denied/);
        assert.match(
          r.stderr,
          /vale-ctl: switch vale4 .* belongs to uid 65534, refusing to use it as root/,
        );
        msgs.push(r.stderr.trim().replaceAll("\n", "\n  "));
        r = await runTool("vale-ctl", ["-r", "vi0"], L.run);
        assert.equal(r.code, 0, r.stderr);
      });

      await t.step("module: planted by a member of a shared switch; root sends", async () => {
        using a = openPort("vale8:a", { runDir: L.run, group: GID });
        using b = openPort("vale8:b", { runDir: L.run });
        const r = await asUser([UID, GID], [L.peer, "plant", L.run, "vale8", so]);
        assert.match(r.out, /^ok planted/);
        a.send(makeFrame(BROADCAST, mac(1), 1, 1, 60));
        msgs.push(refused(
          () => a.txsync(),
          "EPERM",
          /lookup module .*planted\.so of switch vale8 refused: the switch is shared with group 4242.*1 frame\(s\) dropped/,
        ));
        assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound, "never loaded");
        assert.deepEqual(b.tryReceive(), []);
        const pa = switchInfo("vale8", { runDir: L.run }).ports.find((p) => p.name === "a")!;
        assert.equal(pa.counters.drops.lookup, 1);
      });

      await t.step(
        "group sharing: a member joins and exchanges frames, others do not",
        async () => {
          using a = openPort("vale9:a", { runDir: L.run, group: GID });
          const dir = `${L.run}/vale9`;
          assert.equal(mode(dir), 0o2770);
          assert.equal(Deno.statSync(dir).gid, GID);
          for (const f of Deno.readDirSync(dir)) {
            assert.equal(mode(`${dir}/${f.name}`), 0o660, f.name);
            assert.equal(Deno.statSync(`${dir}/${f.name}`).gid, GID, f.name);
          }
          const no = await asUser([UID], [L.peer, "open", L.run, "vale9", "x"]);
          assert.match(
            no.out,
            /^err 13 switch vale9 .* is not shared with a group uid 65534 is in \(group 4242, mode 2770/,
          );
          const member = asUser([UID, GID], [L.peer, "pingpong", L.run, "vale9", "m"]);
          let got = 0;
          const deadline = Date.now() + 5000;
          while (!got && Date.now() < deadline) {
            got = a.tryReceive().length;
            if (!got) await new Promise((r) => setTimeout(r, 10));
          }
          assert.ok(got > 0, "root received the member's frame");
          a.send(makeFrame(BROADCAST, mac(2), 1, 2, 60));
          a.txsync();
          const m = await member;
          assert.match(m.out, /^ok received/, m.out);
          assert.ok(listSwitches({ runDir: L.run }).includes("vale9"));
          // a member can create a switch shared with the group too, not with another one
          const own = await asUser([UID, GID], [L.peer, "open", L.run, "valeM", "x", String(GID)]);
          assert.match(own.out, /^ok opened/);
          const other = await asUser([UID, GID], [L.peer, "open", L.run, "valeN", "x", "4343"]);
          assert.match(
            other.out,
            /^err 1 cannot share switch valeN with group 4343: you are not in it/,
          );
          // asking for a group the existing switch is not shared with
          using _p = openPort("valeP:a", { runDir: L.run });
          msgs.push(refused(
            () => openPort("valeP:z", { runDir: L.run, group: GID }),
            "EPERM",
            /switch valeP exists and is .*not shared with group 4242/,
          ));
        },
      );

      await t.step(
        "a switch whose ports were all SIGKILLed disappears at vale-ctl -l",
        async () => {
          const child = new Deno.Command(L.peer, {
            args: ["hold", L.run, "valeK", "k"],
            stdout: "piped",
          }).spawn();
          const rd = child.stdout.getReader();
          const { value } = await rd.read();
          assert.match(new TextDecoder().decode(value), /ok ready/);
          assert.ok(Deno.statSync(`${L.run}/valeK/ctl`).isFile);
          child.kill("SIGKILL");
          await child.status;
          rd.releaseLock();
          await child.stdout.cancel();
          const l = await runTool("vale-ctl", ["-l"], L.run);
          assert.equal(l.code, 0, l.stderr);
          assert.doesNotMatch(l.stdout, /valeK/);
          assert.throws(() => Deno.statSync(`${L.run}/valeK`), Deno.errors.NotFound);
        },
      );
      console.log("messages:\n  " + msgs.join("\n  "));
    } finally {
      await Deno.remove(L.base, { recursive: true }).catch(() => {});
    }
  },
});
