// What the machine lets a test do: the effective capabilities of this process
// (the kernel tests skip, saying which are missing) and whether a command runs.

/** This process's effective capability set (CapEff of /proc/self/status). */
export function capEff(): bigint {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/^CapEff:\s*([0-9a-f]+)/m);
    return m ? BigInt("0x" + m[1]) : 0n;
  } catch {
    return 0n;
  }
}

/** The capabilities namespaces, veths and TAPs need that this process lacks (empty: all there). */
export function missingNetCaps(): string[] {
  const caps = [["CAP_NET_ADMIN", 12n], ["CAP_NET_RAW", 13n], ["CAP_SYS_ADMIN", 21n]] as const;
  const eff = capEff();
  return caps.filter(([, bit]) => ((eff >> bit) & 1n) === 0n).map(([n]) => n);
}

/** Does `cmd args...` run and succeed? */
export function haveCmd(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}
