// The package as a user without a checkout gets it: imported over HTTP from a
// local server that serves only the published files (as `deno publish
// --dry-run` lists them), with an empty Deno cache and an empty vale cache.
// The first run builds the native library from the published C sources into
// the cache, the second reuses it, a run without a C compiler fails with a
// message saying so, and the CLIs install with `deno install` from the URL.
import assert from "node:assert/strict";
import { C_SOURCES, C_SOURCES_SHA256 } from "../ffi/c_sources.ts";
import { VERSION } from "../ffi/version.ts";
import { manifestText } from "../scripts/c_manifest.ts";

const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();
const haveCc = ["cc", "gcc", "clang"].some((c) =>
  (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${c}`).isFile;
    } catch {
      return false;
    }
  })
);

Deno.test("ffi/c_sources.ts lists c-src/ as it is (scripts/c_manifest.ts)", async () => {
  const text = await manifestText();
  assert.equal(
    Deno.readTextFileSync(`${root}ffi/c_sources.ts`),
    text,
    "stale manifest: run deno run -A scripts/c_manifest.ts (scripts/build.ts does it too)",
  );
  assert.ok(C_SOURCES.includes("c-src/include/vale.h"));
  assert.match(C_SOURCES_SHA256, /^[0-9a-f]{64}$/);
});

Deno.test("ffi/version.ts is deno.json's version", () => {
  const cfg = JSON.parse(Deno.readTextFileSync(`${root}deno.json`));
  assert.equal(VERSION, cfg.version);
});

/** The files `deno publish --dry-run` would publish, relative to the top. */
async function publishedFiles(): Promise<Set<string>> {
  const out = await new Deno.Command(deno, {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: root,
    env: { NO_COLOR: "1", DENO_NO_PACKAGE_JSON: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `deno publish --dry-run failed:\n${text}`);
  const files = new Set<string>();
  const top = new URL("..", import.meta.url).href;
  for (const m of text.matchAll(/^\s+(file:\/\/\S+)\s+\(/gm)) {
    if (m[1].startsWith(top)) files.add(decodeURIComponent(m[1].slice(top.length)));
  }
  assert.ok(files.has("lib/mod.ts") && files.has("c-src/include/vale.h"), text);
  return files;
}

/** Serve `files` (and nothing else) from the checkout on 127.0.0.1. */
function serve(files: Set<string>): { url: string; hits: string[]; close: () => Promise<void> } {
  const hits: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname.slice(1));
    hits.push(path);
    if (!files.has(path)) return new Response("not published\n", { status: 404 });
    const type = path.endsWith(".ts")
      ? "application/typescript"
      : path.endsWith(".json")
      ? "application/json"
      : "text/plain";
    return new Response(await Deno.readFile(`${root}${path}`), {
      headers: { "content-type": type },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    hits,
    close: () => server.shutdown(),
  };
}

const PROGRAM = (base: string) => `
import { openPort } from "${base}lib/mod.ts";
using a = openPort("vale0:a");
using b = openPort("vale0:b");
const frame = new Uint8Array(60);
frame.fill(0xff, 0, 6); // broadcast
frame.set([2, 0, 0, 0, 0, 1], 6);
for (let i = 0; i < 10; i++) {
  frame[59] = i;
  a.send(frame);
}
a.txsync();
let got = 0;
for (let t = 0; t < 100 && got < 10; t++) got += (await b.receive(100)).length;
console.log("received " + got);
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  const out = await new Deno.Command(deno, {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "imported over HTTP with no checkout: builds into the cache once, reuses it, CLIs install",
  ignore: !haveCc,
  async fn() {
    const files = await publishedFiles();
    const srv = serve(files);
    const tmp = await Deno.makeTempDir({ prefix: "vale-pkg-" });
    const runDir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vale-test-" });
    try {
      Deno.writeTextFileSync(`${tmp}/main.ts`, PROGRAM(srv.url));
      const env = {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: tmp,
        DENO_DIR: `${tmp}/deno`,
        VALE_CACHE_DIR: `${tmp}/cache`,
        VALE_RUN_DIR: runDir,
      };
      const args = ["run", "--quiet", "--no-lock", "--no-config", "-A", `${tmp}/main.ts`];

      const first = await run(args, env, tmp);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /received 10/);
      assert.match(first.stderr, /building the native library/);
      const lib = `${tmp}/cache/${VERSION}-${C_SOURCES_SHA256.slice(0, 16)}/libvale.so`;
      const st1 = Deno.statSync(lib);
      assert.equal((st1.mode ?? 0) & 0o022, 0);
      // every C source came from the server; nothing unpublished was asked for
      for (const src of C_SOURCES) assert.ok(srv.hits.includes(src), `${src} not fetched`);
      assert.deepEqual(srv.hits.filter((h) => !files.has(h)), []);

      const second = await run(args, env, tmp);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /received 10/);
      assert.doesNotMatch(second.stderr, /building/);
      const st2 = Deno.statSync(lib);
      assert.equal(st2.ino, st1.ino);
      assert.equal(st2.mtime?.getTime(), st1.mtime?.getTime());

      // the CLIs, installed from the same URL, use the cached library
      const inst = await run(
        [
          "install",
          "-g",
          "-A",
          "--quiet",
          "--root",
          `${tmp}/inst`,
          "-n",
          "vale-ctl",
          "-f",
          `${srv.url}cli/vale-ctl.ts`,
        ],
        env,
        tmp,
      );
      assert.equal(inst.code, 0, inst.stderr);
      const ctl = await new Deno.Command(`${tmp}/inst/bin/vale-ctl`, {
        args: ["-l"],
        // the installed shim runs `deno` from PATH, as on a user's machine
        env: { ...env, NO_COLOR: "1", PATH: `${deno.slice(0, deno.lastIndexOf("/"))}:${env.PATH}` },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(ctl.code, 0, new TextDecoder().decode(ctl.stderr));
      assert.doesNotMatch(new TextDecoder().decode(ctl.stderr), /building/);

      // no C compiler and nothing cached: a clear error, no crash
      const noCc = await run(args, {
        ...env,
        PATH: "/nonexistent",
        VALE_CACHE_DIR: `${tmp}/cache2`,
      }, tmp);
      assert.notEqual(noCc.code, 0);
      assert.match(noCc.stderr, /no C compiler found \(looked for cc, gcc and clang/);
      assert.match(noCc.stderr, /VALE_LIB/);
    } finally {
      await srv.close();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
    }
  },
});
