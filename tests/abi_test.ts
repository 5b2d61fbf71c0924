// Every struct layout of ffi/structs/ against the compiler's offsetof/sizeof
// (vale_abi_layout, c-src/core/abi.c), and the flag constants against their C
// #defines: a field moved on one side only fails here, not in a packet trace.
import assert from "node:assert/strict";
import { vale } from "../ffi/lib.ts";
import { LAYOUTS } from "../ffi/structs/mod.ts";
import { Mtu, OpenFlags } from "../ffi/structs/open_req.ts";
import { IoFlags, IoKind } from "../ffi/structs/io.ts";
import { FWD_STATES, FwdFlags } from "../ffi/structs/fwd.ts";
import { DROP_REASONS, MAX_RINGS } from "../ffi/structs/port_info.ts";
import { BrConsts, PgConsts } from "../ffi/structs/tools.ts";

interface CLayout {
  structs: Record<string, { size: number; fields: Record<string, number> }>;
  constants: Record<string, number>;
}

function cLayout(): CLayout {
  let cap = 4096;
  for (;;) {
    const buf = new Uint8Array(cap);
    const n = vale().vale_abi_layout(buf, cap);
    if (n <= cap) return JSON.parse(new TextDecoder().decode(buf.subarray(0, n - 1)));
    cap = n;
  }
}

Deno.test("abi: every TypeScript struct layout matches offsetof/sizeof in C", () => {
  const c = cLayout();
  for (const l of LAYOUTS) {
    const cs = c.structs[l.name];
    assert.ok(cs, `struct ${l.name} is not exported by vale_abi_layout (c-src/core/abi.c)`);
    assert.equal(l.size, cs.size, `sizeof(struct ${l.name})`);
    for (const [f, field] of Object.entries(l.fields)) {
      assert.ok(f in cs.fields, `${l.name}.${f}: no such field in C (or not listed in abi.c)`);
      assert.equal(field.offset, cs.fields[f], `offsetof(struct ${l.name}, ${f})`);
    }
  }
  // and nothing the C side lists is left without a TypeScript codec
  const ts = new Set(LAYOUTS.map((l) => l.name));
  for (const name of Object.keys(c.structs)) assert.ok(ts.has(name), `no codec for ${name}`);
});

Deno.test("abi: flag and enum values match the C #defines", () => {
  const k = cLayout().constants;
  const want: Record<string, number> = {
    ...OpenFlags,
    ...Mtu,
    VALE_LAYOUT_VERSION: 3,
    VD_NREASONS: DROP_REASONS.length,
    ...IoFlags,
    ...FwdFlags,
    ...PgConsts,
    ...BrConsts,
    VALE_MAX_RINGS: MAX_RINGS,
    VIO_AUTO: IoKind.auto,
    VIO_TAP: IoKind.tap,
    VIO_PACKET: IoKind.packet,
    VIO_XDP: IoKind.xdp,
  };
  for (const [i, s] of FWD_STATES.entries()) want[`VFS_${s.toUpperCase()}`] = i;
  for (const [i, r] of DROP_REASONS.entries()) want[`VD_${r.toUpperCase()}`] = i;
  for (const [name, v] of Object.entries(want)) {
    assert.ok(name in k, `${name} is not exported by vale_abi_layout`);
    assert.equal(v, k[name], name);
  }
});
