// Port-name grammar: one table of valid and invalid names (netmap's own parser
// table, nmreq_parse_tests in ctrl-api-test.c, has 39 rows; this one covers the
// same ground plus vale's own port types, limits and option errors). The table lives in
// helpers/names_table.ts: tests/fuzz/ starts from it too.

import assert from "node:assert/strict";
import {
  formatPortName,
  isSwitchName,
  parseAttachName,
  parsePortName,
  PortNameError,
  switchPortKey,
} from "../lib/names.ts";
import { INVALID, VALID } from "./helpers/names_table.ts";

Deno.test("port names: the table is big enough and has no duplicate rows", () => {
  const all = [...VALID.map((v) => v.input), ...INVALID.map((v) => v.input)];
  assert.ok(all.length >= 45, `only ${all.length} cases`);
  assert.equal(new Set(all).size, all.length, "duplicate inputs in the table");
});

Deno.test("port names: valid", async (t) => {
  for (const c of VALID) {
    await t.step(JSON.stringify(c.input), () => {
      const spec = parsePortName(c.input);
      assert.deepStrictEqual(spec, c.spec);
      const canonical = formatPortName(spec);
      assert.equal(canonical, c.canonical ?? c.input);
      // the canonical name means the same port, and so does the identity name
      assert.deepStrictEqual(parsePortName(canonical), spec);
      assert.equal(parsePortName(spec.name).name, spec.name);
    });
  }
});

Deno.test("port names: invalid", async (t) => {
  for (const c of INVALID) {
    await t.step(JSON.stringify(c.input), () => {
      let err: unknown;
      try {
        parsePortName(c.input);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof PortNameError, `expected a PortNameError, got ${err}`);
      assert.equal(err.message, c.error);
      assert.equal(err.input, c.input);
      assert.equal(err.name, "PortNameError");
      assert.ok(err.message.endsWith(err.reason));
      if (c.position !== undefined) assert.equal(err.position, c.position);
    });
  }
});

Deno.test("port names: switchPortKey", async (t) => {
  const cases: [string, string][] = [
    ["vale0:a", "a"],
    ["vale0:p{3", "p{3"],
    ["vale0:p}3/x", "p}3"],
    ["vale:0-1@conf:rings=2", "0"],
  ];
  for (const [input, key] of cases) {
    await t.step(input, () => {
      const spec = parsePortName(input);
      assert.equal(switchPortKey(spec), key);
      assert.ok(spec.switchName !== undefined);
    });
  }
  await t.step("not a switch port", () => {
    assert.throws(
      () => switchPortKey(parsePortName("netmap:nic0")),
      (e: unknown) =>
        e instanceof PortNameError &&
        e.message ===
          "invalid port name 'netmap:nic0': a netmap port is not on a switch (expected 'valeX:PORT')",
    );
  });
});

Deno.test("port names: non-string input is a TypeError", () => {
  assert.throws(() => parsePortName(42 as unknown as string), TypeError);
});

Deno.test("port names: isSwitchName (what listings and vale-ctl take as a switch)", () => {
  for (const s of ["vale", "vale0", "vale-a", "vale-1", "vale.b", "vale+x", "vale-persistent"]) {
    assert.ok(isSwitchName(s), s);
  }
  for (
    const s of ["", "val", "VALE0", "persistent-ports", ".kernel", "vale a", "vale/x", "vale:x"]
  ) {
    assert.ok(!isSwitchName(s), s);
  }
  assert.ok(!isSwitchName("vale-abcdefghijk"), "16 characters");
  // every switch a parsed name names is one
  for (const n of ["vale-a:1", "vale-foo", "vale0:p{3", "vale:0"]) {
    assert.ok(isSwitchName(parsePortName(n).switchName!), n);
  }
});

Deno.test("port names: vale-ctl -a/-d names with 2012 switches", () => {
  assert.deepEqual(parseAttachName("vale-a:vi0"), { switchName: "vale-a", port: "vi0" });
  const k = parseAttachName("vale-a:tap:tap0");
  assert.deepEqual([k.switchName, k.port, k.kernel?.kind], ["vale-a", "tap0", "tap"]);
  assert.throws(() => parseAttachName("vale a:vi0"), PortNameError);
});
