/**
 * The one error class of the library, {@link ValeError}, and the one errno
 * table: every failure of libvale (switch, kernel I/O, forwarder) and every
 * refusal of the TypeScript side is a ValeError whose `code` is the errno
 * name a user can search for.
 *
 * @module
 */
import { lastError } from "../ffi/lib.ts";

/** errno numbers (Linux) by name: the errnos vale reports. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  EMFILE: 24,
  ENOSPC: 28,
  ENAMETOOLONG: 36,
  ELOOP: 40,
  EPROTO: 71,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  ENETDOWN: 100,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
} as const;

/** Name of an errno vale reports. */
export type ErrnoName = keyof typeof Errno;

const NAME_OF = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

// strerror() texts, as netmap's tools print them (vale-ctl's "failed to ...: TEXT"
// lines are compared with netmap's by the tests); errnos without one print their name
const STRERROR: Partial<Record<ErrnoName, string>> = {
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

/** A failed call into libvale, or a refusal: `code` is the errno name (`EEXIST`, `EBUSY`, …). */
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
    this.code = NAME_OF.get(errno) ?? `E${errno}`;
  }
  /** strerror()-like text of the errno, as netmap's tools print it. */
  get strerror(): string {
    return STRERROR[this.code as ErrnoName] ?? this.code;
  }
}

/**
 * Throws a ValeError for a negative return code of the C library, with the
 * message of `messageOf` (the library's last error by default; kernel I/O
 * and forwarders keep their own).
 */
export function check(rc: number, what?: string, messageOf: () => string = lastError): number {
  if (rc >= 0) return rc;
  throw new ValeError(-rc, messageOf() || `${what ?? "vale"} failed`);
}

/** Any thrown value as a ValeError (EINVAL with its message when it is not one). */
export function asValeError(e: unknown): ValeError {
  if (e instanceof ValeError) return e;
  return new ValeError(Errno.EINVAL, e instanceof Error ? e.message : String(e));
}
