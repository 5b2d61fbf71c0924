// No module of lib/, cli/ or ffi/ may import itself back through others: a
// cycle means one of them runs before the other is initialised (which is how
// lib/backends.ts once had to define its class on first use). The graph is
// Deno's own (`deno info --json`), so it sees every import form the runtime
// sees; the failure names the cycle.
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);
const DIRS = ["lib", "cli", "ffi"];

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: URL) => {
    for (const e of Deno.readDirSync(dir)) {
      const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
      if (e.isDirectory) walk(u);
      else if (e.name.endsWith(".ts")) out.push(u.href);
    }
  };
  for (const d of DIRS) walk(new URL(`${d}/`, ROOT));
  return out.sort();
}

/** Module → the modules it imports (static, dynamic and type-only), ours only. */
async function importGraph(files: string[]): Promise<Map<string, string[]>> {
  // one `deno info` over a module that imports every file (types included)
  const dir = await Deno.makeTempDir({ prefix: "vale-cycles" });
  try {
    const all = `${dir}/all.ts`;
    await Deno.writeTextFile(all, files.map((f) => `import "${f}";\n`).join(""));
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--no-lock", "--config", new URL("deno.json", ROOT).pathname, all],
      env: { DENO_NO_PACKAGE_JSON: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    const info = JSON.parse(new TextDecoder().decode(r.stdout)) as {
      modules: {
        specifier: string;
        dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
      }[];
    };
    const ours = new Set(files);
    const graph = new Map<string, string[]>();
    for (const m of info.modules) {
      if (!ours.has(m.specifier)) continue;
      const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
        .filter((s): s is string => !!s && ours.has(s));
      graph.set(m.specifier, [...new Set(deps)]);
    }
    return graph;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every cycle found by a depth-first walk, each as the path that closes it. */
function findCycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (m: string) => {
    state.set(m, "open");
    stack.push(m);
    for (const d of graph.get(m) ?? []) {
      if (state.get(d) === "open") cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(m, "done");
  };
  for (const m of [...graph.keys()].sort()) if (!state.has(m)) visit(m);
  return cycles;
}

Deno.test("import cycles: none in lib/, cli/, ffi/", async () => {
  const files = sourceFiles();
  const graph = await importGraph(files);
  assert.ok(graph.size >= files.length - 1, "deno info saw every module");
  const rel = (s: string) => s.slice(ROOT.href.length);
  const cycles = findCycles(graph).map((c) => c.map(rel).join(" → "));
  assert.deepEqual(cycles, [], `import cycles:\n  ${cycles.join("\n  ")}`);
});

Deno.test("import cycles: the checker finds one", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(findCycles(g), [["a", "b", "c", "a"]]);
});
