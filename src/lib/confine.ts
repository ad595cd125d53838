// Directory confinement: the one answer to "is this path inside a folder the
// user allowed, after symbolic links are resolved". Spawning agents
// (src/agents/manager.ts), the registry's list_directories and spawn_agent
// (src/agents/hypivisor.ts) and pi-socket's list_files (agent-socket.ts) all
// ask it, so a link cannot lead out through any of them.

import { realpath } from "node:fs/promises";
import path from "node:path";

/** p is root or below it, by name only (both absolute and normalised). */
export function within(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/**
 * The real path of p: of its longest existing prefix, with the names that do
 * not exist yet appended (so a folder about to be created is judged by where
 * it would really be).
 */
export async function realPrefix(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = path.resolve(p);
  for (;;) {
    try { return path.join(await realpath(cur), ...rest.reverse()); } catch { /* go up */ }
    const up = path.dirname(cur);
    if (up === cur) return path.resolve(p);
    rest.push(path.basename(cur));
    cur = up;
  }
}

/**
 * The real path of p when it lies inside one of roots (each compared by its
 * own real path), after every symbolic link is resolved; null otherwise.
 * p need not exist yet: see realPrefix.
 */
export async function realInside(p: string, roots: readonly string[]): Promise<string | null> {
  const real = await realPrefix(p);
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => path.resolve(r))));
  return realRoots.some((r) => within(real, r)) ? real : null;
}
