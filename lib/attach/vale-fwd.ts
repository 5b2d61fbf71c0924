/**
 * vale-fwd: the forwarder process of a kernel-interface attachment
 * (`vale-ctl -a valeX:IF`, `-h`). Started by ./attach.ts, not by hand:
 *
 *   vale-fwd --supervise CONF   supervisor: runs `--worker CONF`, restarts it
 *                               when it dies abnormally (≤ 5 times a minute)
 *   vale-fwd --worker CONF      the forwarder: opens the interface and the
 *                               persistent switch port(s), runs the C
 *                               forwarder (c-src/fwd/fwd.c), reports its state
 *
 * CONF is `RUN/.attach/valeX/IF.conf.json` (./attach.ts AttachConfig). The
 * worker reports in `IF.state.json`, the supervisor in `IF.sup.json`, both
 * log to `IF.log`. SIGTERM (or SIGINT) detaches: the forwarder stops, the
 * switch ports are removed, TAPs it created are deleted. An interface that
 * disappears detaches the same way (exit status 3, state `gone`). `--worker`
 * can also run under systemd (Restart=on-failure) instead of `--supervise`.
 *
 * Exit status: 0 detached, 1 supervisor gave up, 2 could not start, 3 the
 * interface was removed.
 *
 * @module
 */
import {
  type AttachConfig,
  attachFiles,
  forwarderCommand,
  readJson,
  type SupervisorState,
  type WorkerState,
  writeJson,
} from "./attach.ts";
import { logger, onStopSignal, sleep, type Wake } from "./log.ts";
import { EXIT_DETACHED, EXIT_FAILED, EXIT_GAVE_UP, EXIT_GONE, worker } from "./worker.ts";

const MAX_RESTARTS = 5, RESTART_WINDOW_MS = 60_000;

// ---------------------------------------------------------------- supervisor

async function supervise(confPath: string): Promise<number> {
  const conf = readJson<AttachConfig>(confPath);
  if (!conf) {
    console.error(`vale-fwd: cannot read ${confPath}`);
    return EXIT_FAILED;
  }
  const f = attachFiles(conf.switch, conf.port, conf.runDir);
  const log = logger(f.log, "supervisor");
  const sup: SupervisorState = { pid: Deno.pid, state: "supervising", restarts: 0 };
  const report = () => {
    try {
      writeJson(f.sup, sup);
    } catch { /* the run dir went away */ }
  };
  report();
  let stopping = false;
  let child: Deno.ChildProcess | null = null;
  const wake: Wake = {};
  const onSig = () => {
    stopping = true;
    if (child) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    wake.fn?.();
  };
  onStopSignal(onSig);
  const recent: number[] = [];
  let ranOnce = false;
  for (;;) {
    const c = forwarderCommand(["--worker", confPath]);
    child = new Deno.Command(c.cmd, {
      args: c.args,
      cwd: "/",
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const pid = child.pid;
    // it counts as started once it reported running (then nothing to poll until it exits)
    const watch = setInterval(() => {
      const st = readJson<WorkerState>(f.state);
      if (st?.pid === pid && (st.state === "running" || st.state === "down")) {
        ranOnce = true;
        clearInterval(watch);
      }
    }, 100);
    if (stopping) child.kill("SIGTERM");
    const status = await child.status;
    clearInterval(watch);
    child = null;
    const st = readJson<WorkerState>(f.state);
    if (st?.pid === pid && (st.state === "running" || st.state === "down")) ranOnce = true;
    if (stopping || status.code === EXIT_DETACHED && !status.signal) {
      sup.state = "exited";
      report();
      log(`forwarder pid ${pid} detached; supervisor exits`);
      return EXIT_DETACHED;
    }
    if (status.code === EXIT_GONE) {
      sup.state = "exited";
      report();
      log(`forwarder pid ${pid}: interface gone; supervisor exits`);
      return EXIT_DETACHED;
    }
    if (!ranOnce || st?.state === "failed" && st.pid === pid) {
      sup.state = "exited";
      report();
      log(`forwarder pid ${pid} could not start (${st?.message ?? `status ${status.code}`})`);
      return EXIT_FAILED;
    }
    // died: a crash or a kill
    const t = Date.now();
    recent.push(t);
    while (recent.length && t - recent[0] > RESTART_WINDOW_MS) recent.shift();
    sup.lastExit = { code: status.code, signal: status.signal, at: new Date(t).toISOString() };
    if (recent.length > MAX_RESTARTS) {
      sup.state = "gave-up";
      report();
      log(`forwarder died ${recent.length} times within a minute; giving up`);
      return EXIT_GAVE_UP;
    }
    sup.restarts++;
    report();
    const backoff = Math.min(5000, 200 * 2 ** (recent.length - 1));
    log(
      `forwarder pid ${pid} ended ${
        status.signal ? `by ${status.signal}` : `with status ${status.code}`
      }` +
        `; restart #${sup.restarts} in ${backoff} ms`,
    );
    await sleep(backoff, wake);
    if (stopping) {
      sup.state = "exited";
      report();
      return EXIT_DETACHED;
    }
  }
}

/** vale-fwd's main(); returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [mode, conf] = args;
  if (mode === "--worker" && conf) return await worker(conf);
  if (mode === "--supervise" && conf) return await supervise(conf);
  console.error(
    "usage: vale-fwd --supervise CONF | --worker CONF\n" +
      "  started by 'vale-ctl -a/-h' (lib/attach/attach.ts); CONF is RUN/.attach/valeX/IF.conf.json",
  );
  return 2;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
