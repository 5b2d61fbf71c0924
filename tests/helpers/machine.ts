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

/** ip and ping: what every namespace test runs. */
const NET_CMDS: Array<[string, string[]]> = [["ip", ["-V"]], ["ping", ["-V"]]];

/**
 * Why a test that builds namespaces and interfaces cannot run here ("" when
 * it can): the missing capabilities first, then the first of `cmds` (a
 * command and the arguments that make it print its version) that does not run.
 */
export function netSkipReason(cmds: Array<[string, string[]]> = NET_CMDS): string {
  const caps = missingNetCaps();
  if (caps.length) return `needs ${caps.join(", ")} (run as root)`;
  for (const [c, a] of cmds) if (!haveCmd(c, a)) return `needs ${c} (scripts/install-deps.sh)`;
  return "";
}

/**
 * One test file's `Deno.test` registrar: each case is named `prefix: name`,
 * shown as skipped with the file's `skipReason` or its own `extraSkip` (never
 * silently left out), runs without the resource and op sanitizers (cases
 * spawn processes and open sockets that their own cleanup ends), and `after`
 * runs when it ends, passed or failed.
 */
export function testGroup(
  prefix: string,
  skipReason: string,
  after?: () => Promise<void>,
): (name: string, fn: (t: Deno.TestContext) => void | Promise<void>, extraSkip?: string) => void {
  return (name, fn, extraSkip = "") => {
    const why = skipReason || extraSkip;
    if (why) {
      Deno.test({ name: `${prefix}: ${name} (skipped: ${why})`, ignore: true, fn() {} });
      return;
    }
    Deno.test({
      name: `${prefix}: ${name}`,
      sanitizeResources: false,
      sanitizeOps: false,
      async fn(t) {
        try {
          await fn(t);
        } finally {
          await after?.();
        }
      },
    });
  };
}
