// Placeholder for the 9P client commands (ls, cat, write, stat); filled in by the client work.
import type { Argv } from "yargs";
export function clientCommands<T>(y: Argv<T>): Argv<T> { return y; }
