// The pi9 command line (yargs).

import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { serve, resolveToken, UsageError } from "./serve.js";
import type { Level } from "../lib/log.js";
import { clientCommands } from "./client-commands.js";

export async function main(argv: string[]) {
  const y = yargs(argv)
    .scriptName("pi9")
    .usage("$0 <command> [options]")
    .command("serve", "serve the pi9 namespace over 9P", (c) => c
      .option("listen", { type: "string", array: true, describe: "address to listen on (tcp!host!port, unix!/path, host:port); repeatable" })
      .option("stdio", { type: "boolean", default: false, describe: "serve one connection on stdin/stdout" })
      .option("state", { type: "string", describe: "state directory (default ~/.local/state/pi9)" })
      .option("http", { type: "string", default: "127.0.0.1:31415", describe: "HTTP/WebSocket address, or off" })
      .option("token", { type: "string", describe: "token clients must present (prefer PI9_TOKEN or --token-file)" })
      .option("token-file", { type: "string", describe: "file holding the token" })
      .option("agent-root", { type: "string", array: true, describe: "folder spawned agents may run in (and below); repeatable (default: home)" })
      .option("pi", { type: "string", describe: "pi for spawned agents: its cli.js or an executable (default: pi9's own dependency)" })
      .option("pi-arg", { type: "string", array: true, describe: "extra argument for every spawned pi; repeatable (--pi-arg=--offline for dashes)" })
      .option("pi-env", { type: "string", array: true, describe: "KEY=VALUE in every spawned pi's environment; repeatable" })
      .option("log-level", { choices: ["debug", "info", "warn", "error", "silent"] as const, default: "info" as const }),
    async (a) => {
      const token = resolveToken({ token: a.token, tokenFile: a["token-file"] });
      // Keep the token out of ps(1): rewrite the process title.
      process.title = "pi9 serve";
      const r = await serve({ listen: a.listen, stdio: a.stdio, state: a.state, http: a.http, token, logLevel: a["log-level"] as Level,
        agentRoots: a["agent-root"], pi: a.pi, piArgs: a["pi-arg"], piEnv: a["pi-env"] });
      const stop = (sig: string) => {
        process.stderr.write(`pi9: ${sig}: shutting down\n`);
        void r.close().then(() => process.exit(0));
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
    });
  clientCommands(y);
  await y
    .demandCommand(1, "name a command: serve, ls, cat, write, stat")
    .strict()
    .help()
    .fail((msg, err, yy) => {
      if (err && !(err instanceof UsageError)) { process.stderr.write(`pi9: ${err.message}\n`); process.exit(1); }
      process.stderr.write(`pi9: ${err ? err.message : msg}\n`);
      if (!err) process.stderr.write(`${yy.help()}\n`);
      process.exit(2);
    })
    .parseAsync();
}

main(hideBin(process.argv)).catch((e) => {
  process.stderr.write(`pi9: ${e?.message ?? e}\n`);
  process.exit(1);
});
