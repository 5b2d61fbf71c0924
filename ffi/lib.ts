/**
 * Finds and loads libvale.so. `VALE_LIB` overrides the path; otherwise, in a
 * checkout (this module is a file), the library built from its c-src/ into
 * build/ is used, and built on first use when it is missing and a C compiler
 * is around; imported from a URL (no checkout), the library is built once
 * from the published C sources into a per-user cache (ffi/native_cache.ts).
 *
 * @module
 */
import { ensureCachedLibrary } from "./native_cache.ts";
import { symbols, type ValeSymbols } from "./symbols.ts";

/** Layout version this TypeScript code was written against (c-src/include/vale.h). */
export const ABI_VERSION = 3;

const root = new URL("..", import.meta.url);

/** Where the library is looked for when VALE_LIB is not set. */
export function defaultLibraryPath(): string {
  return new URL("build/libvale.so", root).pathname;
}

function exists(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

function tryBuild(): void {
  const script = new URL("scripts/build.ts", root).pathname;
  if (!exists(script) || !exists(new URL("c-src/include/vale.h", root).pathname)) return;
  const res = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script],
    stdout: "inherit",
    stderr: "inherit",
  }).outputSync();
  if (!res.success) throw new Error("vale: building the native library failed (see above)");
}

let lib: Deno.DynamicLibrary<typeof symbols> | undefined;

/** The loaded library (loaded once per process). */
export function vale(): ValeSymbols {
  if (lib) return lib.symbols;
  let path = Deno.env.get("VALE_LIB");
  if (!path && root.protocol !== "file:") path = ensureCachedLibrary(root);
  if (!path) {
    path = defaultLibraryPath();
    if (!exists(path)) tryBuild();
  }
  if (!exists(path)) {
    throw new Error(
      `vale: native library not found at ${path}; run 'deno task build' in the vale checkout ` +
        `or set VALE_LIB to the path of libvale.so`,
    );
  }
  try {
    lib = Deno.dlopen(path, symbols);
  } catch (e) {
    throw new Error(`vale: cannot load ${path}: ${(e as Error).message}`);
  }
  const abi = lib.symbols.vale_abi_version();
  if (abi !== ABI_VERSION) {
    throw new Error(`vale: ${path} has layout version ${abi}, this code expects ${ABI_VERSION}`);
  }
  return lib.symbols;
}

const enc = new TextEncoder();

/** NUL-terminated C string in a buffer. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(enc.encode(s).length + 1);
  enc.encodeInto(s, b);
  return b;
}

/** The calling thread's last error message from the library. */
export function lastError(): string {
  const p = vale().vale_last_error();
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}
