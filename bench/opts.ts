// Bench options: `--name value` on the command line, or PI9_BENCH_NAME in the environment.

export function opt(name: string, def: number): number;
export function opt(name: string, def: string): string;
export function opt(name: string, def: number | string) {
  const i = process.argv.indexOf(`--${name}`);
  const env = process.env[`PI9_BENCH_${name.toUpperCase().replace(/-/g, "_")}`];
  const v = i >= 0 ? process.argv[i + 1] : env;
  if (v === undefined) return def;
  return typeof def === "number" ? Number(v) : v;
}
