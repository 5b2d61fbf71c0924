// The manual's links: every relative link in README.md and docs/*.md points to
// a file that exists, and every #anchor to a heading of that file (GitHub's
// anchors: lower case, punctuation dropped, spaces to '-', '-1', '-2'… for
// repeated headings). Also: README links every docs page and man page, and
// every docs page links back to the README.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** Lines of a markdown file outside fenced code blocks, with their numbers. */
function proseLines(text: string): { line: string; no: number }[] {
  const out: { line: string; no: number }[] = [];
  let fence: string | undefined;
  text.split("\n").forEach((line, i) => {
    const m = line.match(/^\s*(```+|~~~+)/);
    if (m) {
      if (fence === undefined) fence = m[1][0];
      else if (m[1][0] === fence) fence = undefined;
      return;
    }
    if (fence === undefined) out.push({ line, no: i + 1 });
  });
  return out;
}

/** GitHub's anchor for a heading's text. */
export function slug(heading: string): string {
  const text = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1") // links: their text
    .replace(/[`*]/g, "") // code spans and emphasis: their content
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
}

/** The anchors of a markdown file, in order, with GitHub's suffixes for repeats. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { line } of proseLines(text)) {
    const m = line.match(/^#{1,6}\s+(.*?)\s*#*\s*$/);
    if (!m) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Inline links `[text](target)` outside code, with their line numbers. */
export function links(text: string): { target: string; no: number }[] {
  // the prose with fenced blocks blanked and code spans (which may wrap) masked,
  // keeping every newline so that offsets still give line numbers
  const prose = new Array<string>(text.split("\n").length).fill("");
  for (const { line, no } of proseLines(text)) prose[no - 1] = line;
  const masked = prose.join("\n").replace(/`[^`]*`/g, (c) => c.replace(/[^\n]/g, "x"));
  const out: { target: string; no: number }[] = [];
  for (const m of masked.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    out.push({ target: m[1], no: masked.slice(0, m.index).split("\n").length });
  }
  return out;
}

async function docFiles(): Promise<string[]> {
  const files = ["README.md"];
  for await (const e of Deno.readDir(new URL("docs/", ROOT))) {
    if (e.isFile && e.name.endsWith(".md")) files.push(`docs/${e.name}`);
  }
  return files.sort();
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch {
    return false;
  }
}

Deno.test("slugs and anchors as GitHub makes them", () => {
  assert.equal(
    slug("Kernel I/O backends: TAP, AF_XDP, AF_PACKET"),
    "kernel-io-backends-tap-af_xdp-af_packet",
  );
  assert.equal(slug("Attaching: `-a`, `-h`, `-d`"), "attaching--a--h--d");
  assert.equal(slug("The design brief's bars"), "the-design-briefs-bars");
  assert.equal(slug("vale's other rows"), "vales-other-rows");
  assert.deepEqual(
    [...anchors("# A\n## Tests\n```\n# not a heading\n```\n## Tests\n")],
    ["a", "tests", "tests-1"],
  );
  assert.deepEqual(links("see [x](a.md#b) and `[y](no.md)`\n```\n[z](no.md)\n```\n"), [
    { target: "a.md#b", no: 1 },
  ]);
});

Deno.test("every relative link and #anchor in README.md and docs/*.md resolves", async () => {
  const problems: string[] = [];
  const cache = new Map<string, Set<string>>();
  const anchorsOf = async (url: URL) => {
    const key = url.href;
    if (!cache.has(key)) cache.set(key, anchors(await Deno.readTextFile(url)));
    return cache.get(key)!;
  };
  let checked = 0;
  for (const file of await docFiles()) {
    const base = new URL(file, ROOT);
    for (const { target, no } of links(await Deno.readTextFile(base))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: …
      checked++;
      const [path, anchor] = target.split("#", 2);
      const url = path ? new URL(path, base) : base;
      if (!url.href.startsWith(ROOT.href)) {
        problems.push(`${file}:${no}: ${target} leaves the repository`);
        continue;
      }
      if (!(await exists(url))) {
        problems.push(`${file}:${no}: ${target}: no such file`);
        continue;
      }
      if (anchor !== undefined) {
        if (!url.pathname.endsWith(".md")) {
          problems.push(`${file}:${no}: ${target}: an anchor into a file that is not markdown`);
        } else if (!(await anchorsOf(url)).has(anchor)) {
          problems.push(`${file}:${no}: ${target}: no heading with anchor #${anchor}`);
        }
      }
    }
  }
  assert.deepEqual(problems, [], `broken links:\n${problems.join("\n")}`);
  assert.ok(checked > 50, `only ${checked} links found: is the parser broken?`);
});

Deno.test("README links every docs page and man page; every page links back", async () => {
  const readme = links(await Deno.readTextFile(new URL("README.md", ROOT))).map((l) =>
    l.target.split("#")[0]
  );
  const missing: string[] = [];
  for (const file of await docFiles()) {
    if (file === "README.md") continue;
    if (!readme.includes(file)) missing.push(`README does not link ${file}`);
    const back = links(await Deno.readTextFile(new URL(file, ROOT)));
    if (!back.some((l) => l.target.split("#")[0] === "../README.md")) {
      missing.push(`${file} does not link back to ../README.md`);
    }
  }
  for await (const e of Deno.readDir(new URL("docs/man/", ROOT))) {
    if (e.isFile && /\.\d$/.test(e.name) && !readme.includes(`docs/man/${e.name}`)) {
      missing.push(`README does not link docs/man/${e.name}`);
    }
  }
  assert.deepEqual(missing, []);
});
