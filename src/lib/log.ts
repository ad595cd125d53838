// A small leveled logger writing to stderr. Nothing secret is ever passed to it.

export type Level = "debug" | "info" | "warn" | "error" | "silent";
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const nullLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function makeLogger(level: Level, out: (line: string) => void = (l) => process.stderr.write(l + "\n")): Logger {
  const at = ORDER[level];
  const emit = (l: Level) => (msg: string) => { if (ORDER[l] >= at) out(`pi9: ${l === "info" ? "" : l + ": "}${msg}`); };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}
