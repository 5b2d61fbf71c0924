/**
 * Errors from the native library, with the errno name a user can search for.
 *
 * @module
 */
import { lastError } from "../ffi/lib.ts";

const ERRNO: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  6: "ENXIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  36: "ENAMETOOLONG",
  40: "ELOOP",
  71: "EPROTO",
  95: "EOPNOTSUPP",
  110: "ETIMEDOUT",
};

const STRERROR: Record<string, string> = {
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  ENXIO: "No such device or address",
  EAGAIN: "Resource temporarily unavailable",
  ENOMEM: "Cannot allocate memory",
  EACCES: "Permission denied",
  EBUSY: "Device or resource busy",
  EEXIST: "File exists",
  ENODEV: "No such device",
  ENOTDIR: "Not a directory",
  ELOOP: "Too many levels of symbolic links",
  EINVAL: "Invalid argument",
  ENOSPC: "No space left on device",
  ENAMETOOLONG: "File name too long",
  EPROTO: "Protocol error",
  EOPNOTSUPP: "Operation not supported",
};

/** A failed call into libvale: `code` is the errno name (`EEXIST`, `EBUSY`, …). */
export class ValeError extends Error {
  /** errno name, e.g. `EBUSY`. */
  readonly code: string;
  /** errno number. */
  readonly errno: number;
  /** Wraps errno `errno` with a message. */
  constructor(errno: number, message: string) {
    super(message);
    this.name = "ValeError";
    this.errno = errno;
    this.code = ERRNO[errno] ?? `E${errno}`;
  }
  /** strerror()-like text of the errno, as netmap's tools print it. */
  get strerror(): string {
    return STRERROR[this.code] ?? this.code;
  }
}

/** Throws a ValeError for a negative return code of the C library. */
export function check(rc: number, what?: string): number {
  if (rc >= 0) return rc;
  const msg = lastError() || `${what ?? "vale"} failed`;
  throw new ValeError(-rc, msg);
}
