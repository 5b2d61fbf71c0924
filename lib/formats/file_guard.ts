/**
 * Opening a file a user named, with care: what a tool that reads a whole
 * input file (a pcap for `pkt-gen -P`, say) must check before it trusts it.
 *
 * - stat first, and refuse anything that is not a regular file, with the
 *   reason: opening a FIFO blocks until a writer comes, a device such as
 *   /dev/zero never ends, a directory cannot be read at all;
 * - fstat again after the open, so a path swapped for a FIFO or a device
 *   between the two calls is still refused (the open itself could block in
 *   that window: Deno has no O_NONBLOCK; the window is microseconds wide and
 *   needs someone racing us on purpose);
 * - read at most a limit, whatever the size says (files under /proc report 0,
 *   a file may grow while read).
 *
 * Failures are {@link FileGuardError}s; callers turn them into their own
 * error type.
 *
 * @module
 */

/** Why a file was refused. */
export type FileGuardReason = "not-found" | "permission" | "not-regular" | "too-large" | "io";

/** A file that cannot or must not be read; `message` is the reason without the path. */
export class FileGuardError extends Error {
  /** Machine-readable reason. */
  readonly reason: FileGuardReason;
  /** The path as given. */
  readonly path: string;
  /** Create the error. */
  constructor(reason: FileGuardReason, path: string, message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "FileGuardError";
    this.reason = reason;
    this.path = path;
  }
}

/** What a file is, for a message: "a directory", "a FIFO", "a character device"… */
export function describeFileType(info: Deno.FileInfo): string {
  if (info.isFile) return "a regular file";
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  if (info.isSymlink) return "a symbolic link";
  return "not a regular file";
}

/** Which non-regular files a caller accepts besides regular files. */
export interface GuardOptions {
  /** Also accept FIFOs (a streaming reader; opening one waits for a writer). */
  allowFifo?: boolean;
}

function pathText(path: string | URL): string {
  return path instanceof URL ? path.pathname : path;
}

/** A Deno error from stat/open/read as a FileGuardError. */
function fromDeno(path: string, e: unknown, doing: string): FileGuardError {
  const m = e instanceof Error ? e.message.replace(/, (stat|open|read) '.*'$/, "") : String(e);
  if (e instanceof Deno.errors.NotFound) {
    return new FileGuardError("not-found", path, `cannot ${doing}: no such file`, e);
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return new FileGuardError("permission", path, `cannot ${doing}: permission denied`, e);
  }
  if (e instanceof Deno.errors.IsADirectory) {
    return new FileGuardError("not-regular", path, "is a directory, not a file", e);
  }
  return new FileGuardError("io", path, `cannot ${doing}: ${m}`, e);
}

function check(path: string, info: Deno.FileInfo, opts: GuardOptions): void {
  if (info.isFile) return;
  if (opts.allowFifo && info.isFifo) return;
  const what = describeFileType(info);
  throw new FileGuardError(
    "not-regular",
    path,
    `is ${what}, not a regular file${opts.allowFifo ? " or FIFO" : ""}`,
  );
}

/** stat, refuse, open, fstat, refuse: see the module comment. Throws {@link FileGuardError}. */
export function openGuardedSync(path: string | URL, opts: GuardOptions = {}): Deno.FsFile {
  const p = pathText(path);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    throw fromDeno(p, e, "open");
  }
  check(p, info, opts);
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true });
  } catch (e) {
    throw fromDeno(p, e, "open");
  }
  try {
    check(p, f.statSync(), opts);
  } catch (e) {
    f.close();
    throw e instanceof FileGuardError ? e : fromDeno(p, e, "open");
  }
  return f;
}

/** Async {@link openGuardedSync}. */
export async function openGuarded(
  path: string | URL,
  opts: GuardOptions = {},
): Promise<Deno.FsFile> {
  const p = pathText(path);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw fromDeno(p, e, "open");
  }
  check(p, info, opts);
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    throw fromDeno(p, e, "open");
  }
  try {
    check(p, await f.stat(), opts);
  } catch (e) {
    f.close();
    throw e instanceof FileGuardError ? e : fromDeno(p, e, "open");
  }
  return f;
}

/** The error for a file longer than `max` bytes (`size` when known). */
export function tooLarge(path: string, max: number, size?: number): FileGuardError {
  const what = size === undefined ? `more than ${max} bytes` : `${size} bytes`;
  return new FileGuardError(
    "too-large",
    path,
    `file too large: ${what}, the limit for reading it whole is ${max} bytes`,
  );
}

/** Read a chunk; a read error becomes a FileGuardError. */
export function readChunkSync(f: Deno.FsFile, path: string, buf: Uint8Array): number | null {
  try {
    return f.readSync(buf);
  } catch (e) {
    throw fromDeno(path, e, "read");
  }
}

/** Async {@link readChunkSync}. */
export async function readChunk(
  f: Deno.FsFile,
  path: string,
  buf: Uint8Array,
): Promise<number | null> {
  try {
    return await f.read(buf);
  } catch (e) {
    throw fromDeno(path, e, "read");
  }
}

/** The printable path of `path`. */
export { pathText };
