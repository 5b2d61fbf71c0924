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
  // c-src/core/abi.c: offsetof/sizeof of the structs in ffi/structs/, as JSON (tests/abi_test.ts)
  vale_abi_layout: { parameters: ["buffer", "u32"], result: "i32" },

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
  vale_set_batch: { parameters: ["buffer", "buffer", "u32"], result: "i32" },
  vale_lookup_config: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  vale_switch_json: { parameters: ["buffer", "buffer", "buffer", "u32"], result: "i32" },
  vale_reap: { parameters: ["buffer", "buffer"], result: "i32" },
  vale_group_id: { parameters: ["buffer", "buffer"], result: "i32" },
  vale_secure_dir: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  vale_port_set_info: {
    parameters: ["buffer", "buffer", "buffer", "i32", "buffer"],
    result: "i32",
  },
  // virtio-net header length and MTU: of an open port, of a port by name (-1 keeps)
  vale_set_vnet: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  // back-pressure of a handle's senders: wait up to N µs for room at a full destination
  vale_set_backpressure: { parameters: ["pointer", "u32"], result: "i32" },
  vale_port_set_vnet: { parameters: ["buffer", "buffer", "buffer", "i32", "i32"], result: "i32" },

  // --- tools (pkt-gen, bridge) ---
  // c-src/apps/pktgen.c: create(conf, conf_len, frame, frame_len) -> ctx | null
  vale_pg_create: { parameters: ["buffer", "u32", "buffer", "u32"], result: "pointer" },
  vale_pg_set_port: { parameters: ["pointer", "u32", "pointer"], result: "i32" },
  // -P FILE with several frames: records [u32 len][len bytes], sent in turn (tx)
  vale_pg_set_frames: { parameters: ["pointer", "buffer", "u64"], result: "i32" },
  vale_pg_stats: { parameters: ["pointer"], result: "pointer" },
  vale_pg_run: { parameters: ["pointer"], result: "i32", nonblocking: true },
  vale_pg_stop: { parameters: ["pointer"], result: "void" },
  vale_pg_destroy: { parameters: ["pointer"], result: "void" },
  // c-src/apps/bridge.c: create(port_a, port_b | null, conf, conf_len) -> ctx | null
  vale_br_create: { parameters: ["pointer", "pointer", "buffer", "u32"], result: "pointer" },
  vale_br_stats: { parameters: ["pointer"], result: "pointer" },
  vale_br_run: { parameters: ["pointer"], result: "i32", nonblocking: true },
  vale_br_stop: { parameters: ["pointer"], result: "void" },
  vale_br_destroy: { parameters: ["pointer"], result: "void" },
  // --- end tools ---

  // --- kernel I/O ---
  // c-src/include/io.h: TAP / AF_PACKET / AF_XDP handles (wrapped by lib/backends/kernel_io.ts)
  vale_io_last_error: { parameters: [], result: "pointer" },
  vale_io_kind_name: { parameters: ["u32"], result: "pointer" },
  vale_io_open: { parameters: ["u32", "buffer", "buffer", "buffer"], result: "i32" },
  vale_io_close: { parameters: ["pointer"], result: "void" },
  vale_io_recv_batch: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  vale_io_send_batch: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "u32"],
    result: "i32",
  },
  vale_io_fd: { parameters: ["pointer"], result: "i32" },
  vale_io_poll: { parameters: ["pointer", "u32", "i32"], result: "i32" },
  vale_io_poll_async: {
    name: "vale_io_poll",
    parameters: ["pointer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  vale_io_check: { parameters: ["pointer"], result: "i32" },
  vale_io_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  vale_io_info: { parameters: ["pointer", "buffer"], result: "i32" },
  vale_io_tx_pending: { parameters: ["pointer"], result: "i32" },
  vale_io_tap_persist: { parameters: ["pointer", "i32"], result: "i32" },
  vale_io_link: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  vale_io_set_link: { parameters: ["buffer", "buffer", "i32", "u32"], result: "i32" },
  vale_io_set_offloads: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  vale_io_set_mac: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  vale_io_vhost_json: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  // c-src/fwd/fwd.h: forwarder kernel interface <-> port (lib/backends/forwarder.ts, lib/attach/side.ts)
  vale_fwd_last_error: { parameters: [], result: "pointer" },
  // c-src/kfast/ (include/kfast.h): an attachment's kernel fast path
  vale_kfast_start: { parameters: ["pointer", "pointer", "u32", "buffer"], result: "i32" },
  vale_kfast_stop: { parameters: ["pointer"], result: "void" },
  vale_kfast_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  vale_kfast_attached: { parameters: ["u32"], result: "i32" },
  vale_io_mark_filter: { parameters: ["pointer", "u32"], result: "i32" },
  vale_fwd_create: { parameters: ["pointer", "pointer", "buffer", "buffer"], result: "i32" },
  vale_fwd_start: { parameters: ["pointer"], result: "i32" },
  vale_fwd_wait: { parameters: ["pointer", "i32"], result: "i32", nonblocking: true },
  vale_fwd_stop: { parameters: ["pointer"], result: "void" },
  vale_fwd_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  vale_fwd_destroy: { parameters: ["pointer"], result: "void" },
  // --- end kernel I/O ---
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's callable symbols. */
export type ValeSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
