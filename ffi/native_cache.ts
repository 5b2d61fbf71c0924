/**
 * The native library of a package imported from a URL (no checkout): built
 * once from the published C sources into a per-user cache directory keyed by
 * the package version and the sources' hash, reused afterwards, rebuilt when
 * either changes (a new key).
 *
 *   $VALE_CACHE_DIR, else $XDG_CACHE_HOME/vale, else ~/.cache/vale
 *     <version>-<sha256 of the sources, 16 hex>/libvale.so
 *
 * A library is code: it is loaded only from directories that are ours and
 * writable by nobody else, never through a symlink (the same rule as lookup
 * modules, docs/threat-model.md).
 *
 * @module
 */
import { C_SOURCES_SHA256 } from "./c_sources.ts";
import { VERSION } from "./version.ts";

/** The cache's top directory. */
export function cacheRoot(): string {
  const own = Deno.env.get("VALE_CACHE_DIR");
  if (own) return own;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/vale`;
  const home = Deno.env.get("HOME");
  if (!home) {
    throw new Error("vale: no cache directory for the native library: set VALE_CACHE_DIR or HOME");
  }
  return `${home}/.cache/vale`;
}

/** Where this version's library lives in the cache. */
export function cachedLibraryPath(): string {
  return `${cacheRoot()}/${VERSION}-${C_SOURCES_SHA256.slice(0, 16)}/libvale.so`;
}

/** Refuse a path that is a symlink, not ours, or writable by others. */
function checkOwned(path: string, what: "directory" | "file"): void {
  const st = Deno.lstatSync(path);
  const uid = Deno.uid();
  if (st.isSymlink) throw new Error(`vale: ${path} is a symlink; refusing to load code through it`);
  if (what === "directory" ? !st.isDirectory : !st.isFile) {
    throw new Error(`vale: ${path} is not a ${what}`);
  }
  if (uid !== null && st.uid !== uid) {
    throw new Error(`vale: ${path} belongs to uid ${st.uid}, not to us (uid ${uid}); refusing it`);
  }
  if (((st.mode ?? 0) & 0o022) !== 0) {
    throw new Error(
      `vale: ${path} is writable by others (mode ${
        ((st.mode ?? 0) & 0o7777).toString(8)
      }); refusing to load code from it`,
    );
  }
}

function mkdirOwned(path: string): void {
  try {
    Deno.mkdirSync(path, { mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  checkOwned(path, "directory");
}

/**
 * The cached library for `root` (the package's top URL), built first if it is
 * not there. Prints one line to stderr when it builds.
 */
export function ensureCachedLibrary(root: URL): string {
  const lib = cachedLibraryPath();
  const keyDir = lib.slice(0, lib.lastIndexOf("/"));
  const top = cacheRoot();
  Deno.mkdirSync(top.slice(0, top.lastIndexOf("/")) || "/", { recursive: true });
  mkdirOwned(top);
  mkdirOwned(keyDir);
  try {
    checkOwned(lib, "file");
    return lib;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  console.error(`vale: building the native library for ${VERSION} into ${keyDir} (once)`);
  const work = Deno.makeTempDirSync({ dir: keyDir, prefix: "src." });
  const res = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--no-lock",
      "--no-config",
      "--allow-all",
      new URL("ffi/native_build.ts", root).href,
      "--out",
      lib,
      "--work",
      work,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).outputSync();
  try {
    Deno.removeSync(work, { recursive: true }); // the builder removes it; not if it was killed
  } catch { /* already gone */ }
  if (!res.success) throw new Error("vale: the native library could not be built (see above)");
  checkOwned(lib, "file");
  return lib;
}
