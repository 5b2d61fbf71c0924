/**
 * The one typed symbols object of libvale.so, as `@db/sqlite` does it: every
 * C function the TypeScript side calls is declared here and nowhere else.
 *
 * Conventions of the C side: functions return >= 0 on success and -errno on
 * failure, with a message from `vale_last_error()`; structs are passed as
 * `buffer` (a Uint8Array the size of the C struct).
 *
 * @module
 */

/** Declarations for Deno.dlopen. */
export const symbols = {
  vale_last_error: { parameters: [], result: "pointer" },
  vale_abi_version: { parameters: [], result: "u32" },

  // ports
  vale_open: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  vale_close: { parameters: ["pointer"], result: "void" },
  vale_info: { parameters: ["pointer", "buffer"], result: "i32" },
  vale_txsync: { parameters: ["pointer", "i32"], result: "i32" },
  vale_rxsync: { parameters: ["pointer", "i32"], result: "i32" },
  vale_wait: { parameters: ["pointer", "i32"], result: "i32", nonblocking: true },
  vale_wait_sync: { name: "vale_wait", parameters: ["pointer", "i32"], result: "i32" },
  vale_wake: { parameters: ["pointer"], result: "void" },
  vale_bell_arm: { parameters: ["pointer"], result: "i32" },
  vale_bell_clear: { parameters: ["pointer"], result: "void" },

  // control
  vale_create_persistent: {
    parameters: ["buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  vale_remove_port: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  vale_remove_switch: { parameters: ["buffer", "buffer"], result: "i32" },
  vale_set_lookup: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  vale_lookup_config: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  vale_switch_json: { parameters: ["buffer", "buffer", "buffer", "u32"], result: "i32" },
  vale_reap: { parameters: ["buffer", "buffer"], result: "i32" },
  vale_port_set_info: {
    parameters: ["buffer", "buffer", "buffer", "i32", "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's callable symbols. */
export type ValeSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
