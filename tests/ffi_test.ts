// The native library loader: VALE_LIB override and the error a user sees.
import { ABI_VERSION } from "../ffi/lib.ts";
import assert from "node:assert/strict";

async function run(code: string, env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env,
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    ok: out.success,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

Deno.test("VALE_LIB pointing nowhere: a clear error naming the path and the fix", async () => {
  const r = await run(
    `import { vale } from "./ffi/lib.ts"; vale();`,
    { VALE_LIB: "/nonexistent/libvale.so" },
  );
  assert.equal(r.ok, false);
  assert.match(r.text, /native library not found at \/nonexistent\/libvale\.so/);
  assert.match(r.text, /deno task build/);
});

Deno.test("VALE_LIB pointing at the built library loads it", async () => {
  const lib = new URL("../build/libvale.so", import.meta.url).pathname;
  const r = await run(
    `import { vale } from "./ffi/lib.ts"; console.log("abi", vale().vale_abi_version());`,
    { VALE_LIB: lib },
  );
  assert.ok(r.ok, r.text);
  assert.match(r.text, new RegExp(`abi ${ABI_VERSION}`));
});

Deno.test("a file that is not a vale library is refused with the reason", async () => {
  const r = await run(`import { vale } from "./ffi/lib.ts"; vale();`, {
    VALE_LIB: "/etc/hostname",
  });
  assert.equal(r.ok, false);
  assert.match(r.text, /cannot load \/etc\/hostname/);
});
