// A writer of cpio "newc" archives (the format the Linux kernel unpacks as
// an initramfs, see the kernel's Documentation/driver-api/early-userspace/
// buffer-format.rst). Only what an initramfs needs: directories, regular
// files, symlinks and device nodes, all owned by root.
//
// The kernel accepts several archives one after the other in one initrd
// (each may be compressed or not), so a per-boot archive holding a test
// script can be appended to a base archive without rebuilding it.

export type CpioEntry =
  | { path: string; type: "dir"; mode?: number }
  | { path: string; type: "file"; data: Uint8Array | string; mode?: number }
  | { path: string; type: "symlink"; target: string }
  | { path: string; type: "char" | "block"; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000;
const S_IFCHR = 0o020000, S_IFBLK = 0o060000;
const enc = new TextEncoder();

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** The archive's bytes, entries in the given order, ended by the trailer. */
export function cpioNewc(entries: CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    size += b.length;
  };
  const record = (
    ino: number,
    name: string,
    mode: number,
    data: Uint8Array,
    rdev: [number, number] = [0, 0],
  ) => {
    const nameBytes = enc.encode(name + "\0");
    if (nameBytes.length > 4096) throw new Error(`cpio: name too long: ${name}`);
    const fields = [
      ino,
      mode,
      0, // uid
      0, // gid
      (mode & 0o170000) === S_IFDIR ? 2 : 1, // nlink
      0, // mtime: fixed, so that archives are reproducible
      data.length,
      0, // devmajor
      0, // devminor
      rdev[0],
      rdev[1],
      nameBytes.length,
      0, // check (only for the "crc" format)
    ];
    const head = enc.encode("070701" + fields.map(hex8).join(""));
    push(head);
    push(nameBytes);
    push(new Uint8Array(pad4(head.length + nameBytes.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  };
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, "");
    if (!name || name.split("/").some((c) => c === ".." || c === "")) {
      throw new Error(`cpio: bad path ${JSON.stringify(e.path)}`);
    }
    switch (e.type) {
      case "dir":
        record(ino++, name, S_IFDIR | (e.mode ?? 0o755), new Uint8Array());
        break;
      case "file": {
        const data = typeof e.data === "string" ? enc.encode(e.data) : e.data;
        record(ino++, name, S_IFREG | (e.mode ?? 0o644), data);
        break;
      }
      case "symlink":
        record(ino++, name, S_IFLNK | 0o777, enc.encode(e.target));
        break;
      case "char":
      case "block":
        record(
          ino++,
          name,
          (e.type === "char" ? S_IFCHR : S_IFBLK) | (e.mode ?? 0o600),
          new Uint8Array(),
          [e.major, e.minor],
        );
        break;
    }
  }
  record(0, "TRAILER!!!", 0, new Uint8Array());
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
