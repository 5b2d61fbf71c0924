/**
 * vale: one command for every tool. `vale pkt-gen ...`, `vale ctl ...`
 * (vale-ctl), `vale bridge ...`; `vale list` is `vale-ctl -l`.
 * Tools are looked up in {@link COMMANDS}; a new tool adds one line there.
 *
 * @module
 */
import { err, out } from "./common.ts";

/** A subcommand: its module (exporting `main(args)`), a one-line summary, leading arguments. */
interface Command {
  module: () => Promise<{ main(args: string[]): number | Promise<number> }>;
  summary: string;
  args?: string[];
}

/** The subcommands. */
export const COMMANDS: Record<string, Command> = {
  "pkt-gen": {
    module: () => import("./pkt-gen.ts"),
    summary: "packet generator and sink (netmap's pkt-gen)",
  },
  ctl: {
    module: () => import("./vale-ctl.ts"),
    summary: "switches and persistent ports (netmap's vale-ctl)",
  },
  "vale-ctl": { module: () => import("./vale-ctl.ts"), summary: "same as ctl" },
  bridge: {
    module: () => import("./bridge.ts"),
    summary: "forward between two ports (netmap's bridge)",
  },
  capture: {
    module: () => import("./capture.ts"),
    summary: "write what reaches a port to a pcap file (tcpdump -r reads it)",
  },
  top: {
    module: () => import("./top.ts"),
    summary: "live view of switches: per port rates, drops, rings (q quits)",
  },
  replay: {
    module: () => import("./replay.ts"),
    summary: "send a pcap/pcapng file into a port, timed (netmap's nmreplay)",
  },
  topo: {
    module: () => import("./topo.ts"),
    summary: "test topologies from a JSON file: up, down, status (docs/topology.md)",
  },
  list: {
    module: () => import("./vale-ctl.ts"),
    summary: "list switches and ports (vale-ctl -l)",
    args: ["-l"],
  },
};

/** The usage text (`vale --help`). */
export const USAGE = `Usage: vale COMMAND [ARGUMENTS]

vale: a Virtual Local Ethernet in user space (netmap's VALE switch without a kernel module).

Commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`).join("\n")}
  help       this text; "vale help COMMAND" shows a command's own

Each command takes netmap's options; "vale COMMAND --help" describes them.
Environment: VALE_RUN_DIR, where switches live (default /dev/shm/vale).
`;

/** vale's main(); returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  let [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help") {
    (name === undefined ? err : out)(USAGE);
    return name === undefined ? 1 : 0;
  }
  if (name === "help") {
    if (!rest.length) {
      out(USAGE);
      return 0;
    }
    [name, rest] = [rest[0], ["--help"]];
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    err(`vale: unknown command '${name}'\n\n${USAGE}`);
    return 1;
  }
  const mod = await cmd.module();
  return await mod.main([...(cmd.args ?? []), ...rest]);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
