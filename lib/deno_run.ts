/**
 * The command line that runs one of this package's scripts in a process of
 * its own (the forwarders, a topology's bridges): `deno run -A SCRIPT ARGS`,
 * with the checkout's deno.json when there is one, and the script's URL as it
 * is when the package was imported from a URL.
 *
 * @module
 */

/** `deno run --allow-all SCRIPT ARGS` for a script of this package. */
export function denoRun(script: URL, args: string[]): { cmd: string; args: string[] } {
  const cfg = new URL("../deno.json", import.meta.url);
  let config = ["--no-config"];
  if (cfg.protocol === "file:") {
    try {
      Deno.statSync(cfg);
      config = ["--config", cfg.pathname];
    } catch { /* no config next to the library */ }
  }
  return {
    cmd: Deno.execPath(),
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--no-lock",
      ...config,
      "--allow-all",
      script.protocol === "file:" ? script.pathname : script.href,
      ...args,
    ],
  };
}
