// The man pages in docs/man/: each renders without a warning (groff -ww, and
// man --warnings when man-db is there; skipped, saying why, without groff),
// has the usual sections, and mentions every option its tool's --help lists,
// so that the pages and the tools cannot drift apart.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const MAN = new URL("docs/man/", ROOT);

/** Tool command lines (run from the checkout's bin/) and the page that documents them. */
const TOOLS: { cmd: string[]; page: string }[] = [
  { cmd: ["bin/pkt-gen", "--help"], page: "pkt-gen.8" },
  { cmd: ["bin/vale-ctl", "--help"], page: "vale-ctl.8" },
  { cmd: ["bin/bridge", "--help"], page: "bridge.8" },
  { cmd: ["bin/vale", "capture", "--help"], page: "vale.1" },
  { cmd: ["bin/vale", "top", "--help"], page: "vale.1" },
  { cmd: ["bin/vale", "replay", "--help"], page: "vale.1" },
  { cmd: ["bin/vale", "topo", "--help"], page: "vale.1" },
];

const SECTIONS: Record<string, string[]> = {
  "pkt-gen.8": ["OPTIONS", "EXAMPLES", "EXIT STATUS", "ENVIRONMENT"],
  "vale-ctl.8": ["OPTIONS", "EXAMPLES", "EXIT STATUS", "ENVIRONMENT", "FILES"],
  "bridge.8": ["OPTIONS", "EXAMPLES", "EXIT STATUS", "ENVIRONMENT"],
  "vale.1": [
    "COMMANDS",
    "CAPTURE",
    "REPLAY",
    "TOP",
    "TOPO",
    "EXAMPLES",
    "EXIT STATUS",
    "ENVIRONMENT",
  ],
  "vale.4": ["PORT NAMES", "SEMANTICS", "SECURITY", "ENVIRONMENT", "FILES"],
  "vale-pcap.1": ["OPTIONS", "EXAMPLES", "EXIT STATUS", "ENVIRONMENT", "FILES"],
};

async function run(cmd: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env: { MANWIDTH: "80", LC_ALL: "C.UTF-8", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function have(cmd: string[]): Promise<boolean> {
  try {
    return (await run(cmd)).code === 0;
  } catch {
    return false;
  }
}

async function pages(): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(MAN)) if (e.isFile && /\.\d$/.test(e.name)) out.push(e.name);
  return out.sort();
}

/** A page's roff source as text: font escapes dropped, "\-" as "-". */
async function pageText(page: string): Promise<string> {
  return (await Deno.readTextFile(new URL(page, MAN)))
    .replace(/\\f[BIRP]|\\f\(..|\\&|\\~|\\%/g, "")
    .replace(/\\-/g, "-")
    .replace(/\\\(aq/g, "'");
}

/** The options a --help text lists: short ones starting a line, and every --long one. */
export function helpOptions(help: string): string[] {
  const opts = new Set<string>();
  for (const line of help.split("\n")) {
    const m = line.match(/^\s+(-[A-Za-z0-9])(?=[\s,]|$)/);
    if (m) opts.add(m[1]);
  }
  for (const m of help.matchAll(/(?<![\w-])(--[a-z][a-z-]*)/g)) opts.add(m[1]);
  return [...opts].sort();
}

const groff = await have(["groff", "--version"]);
const mandb = await have(["man", "--version"]);

Deno.test({
  name: groff
    ? "man pages render without warnings (groff -man -ww" + (mandb ? ", man --warnings)" : ")")
    : "man pages render without warnings (skipped: groff is not installed; apt-get install groff-base man-db)",
  ignore: !groff,
  async fn() {
    const problems: string[] = [];
    for (const page of await pages()) {
      const path = `docs/man/${page}`;
      const g = await run(["groff", "-man", "-ww", "-z", path]);
      if (g.code !== 0 || g.stderr.trim()) problems.push(`groff ${path}: ${g.code} ${g.stderr}`);
      if (mandb) {
        const m = await run(["man", "--warnings", "-l", "-P", "cat", path]);
        if (m.code !== 0 || m.stderr.trim()) problems.push(`man ${path}: ${m.code} ${m.stderr}`);
        if (!m.stdout.includes("NAME")) problems.push(`man ${path}: rendered without a NAME`);
      }
    }
    assert.deepEqual(problems, []);
  },
});

Deno.test("man pages have NAME, SYNOPSIS, DESCRIPTION, SEE ALSO and their own sections", async () => {
  const found = await pages();
  assert.deepEqual(found, Object.keys(SECTIONS).sort());
  for (const page of found) {
    const src = await Deno.readTextFile(new URL(page, MAN));
    const [name, sec] = page.split(".");
    assert.match(src, new RegExp(`^\\.TH ${name.toUpperCase()} ${sec} `, "m"), page);
    for (const s of ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO", ...SECTIONS[page]]) {
      assert.match(src, new RegExp(`^\\.SH "?${s}"?$`, "m"), `${page}: no section ${s}`);
    }
  }
});

for (const { cmd, page } of TOOLS) {
  Deno.test(`${page} lists every option of '${cmd.join(" ")}'`, async () => {
    const r = await run(cmd);
    assert.equal(r.code, 0, `${cmd.join(" ")}: ${r.stderr}`);
    const opts = helpOptions(r.stdout);
    assert.ok(opts.length >= 6, `only ${opts.join(" ")} found in ${cmd.join(" ")}`);
    const text = await pageText(page);
    const missing = opts.filter((o) =>
      !new RegExp(`(?<![\\w-])${o.replace(/[-]/g, "\\-")}(?![\\w-])`).test(text)
    );
    assert.deepEqual(missing, [], `${page} does not mention ${missing.join(" ")}`);
  });
}

Deno.test("vale.1 describes every command of 'vale --help'", async () => {
  const r = await run(["bin/vale", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  const block = r.stdout.split(/^Commands:\n/m)[1]?.split(/\n\n/)[0] ?? "";
  const cmds = [...block.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]);
  assert.ok(cmds.length >= 6, `commands found: ${cmds.join(" ")}`);
  const src = await pageText("vale.1");
  const section = src.split(/^\.SH COMMANDS$/m)[1].split(/^\.SH /m)[0];
  const missing = cmds.filter((c) => !new RegExp(`^\\.BR? ${c}(\\s|$)`, "m").test(section));
  assert.deepEqual(missing, [], `vale.1 COMMANDS does not describe ${missing.join(" ")}`);
});

/** Files under a directory of the checkout, recursively (none when it does not exist). */
async function* walk(dir: URL): AsyncGenerator<URL> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.isDirectory) yield* walk(new URL(`${e.name}/`, dir));
    else if (e.isFile && /\.(c|h|ts)$/.test(e.name)) yield new URL(e.name, dir);
  }
}

Deno.test("vale.4 ENVIRONMENT describes every VALE_* variable the library and tools read", async () => {
  const read = new Set<string>();
  for (const dir of ["c-src/", "lib/", "ffi/", "cli/"]) {
    for await (const f of walk(new URL(dir, ROOT))) {
      const src = await Deno.readTextFile(f);
      for (const m of src.matchAll(/(?:getenv|env_u32|Deno\.env\.get)\(\s*"(VALE_\w+)"/g)) {
        if (!m[1].startsWith("VALE_TEST_")) read.add(m[1]); // test hooks: docs/testing.md
      }
    }
  }
  assert.ok(read.size >= 6, `variables found: ${[...read].join(" ")}`);
  const src = await pageText("vale.4");
  const env = src.split(/^\.SH ENVIRONMENT$/m)[1].split(/^\.SH /m)[0];
  const missing = [...read].filter((v) => !new RegExp(`^\\.B ${v}$`, "m").test(env));
  assert.deepEqual(missing, [], `vale.4 ENVIRONMENT does not describe ${missing.join(" ")}`);
});

Deno.test("helpOptions finds short options at line starts and every long one", () => {
  assert.deepEqual(
    helpOptions(
      "Usage:\n  -w FILE   file\n\t-g interface\tinfo\n  -h, --help  text\n (also --json)\nx -q",
    ),
    ["--help", "--json", "-g", "-h", "-w"],
  );
});
