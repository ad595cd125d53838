// Runs an edit through real sam(1) (Debian's 9base: /usr/lib/plan9/bin/sam)
// with no display: `sam -d file`, the commands on stdin, then w and q. sam
// prints its messages (the file name, "#n" counts, ?errors) on stdout and
// stderr; only the file's text afterwards is the result.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SAM_CANDIDATES = ["/usr/lib/plan9/bin/sam", "/usr/lib/9base/bin/sam"];

/** The path of sam, or null when 9base is not installed. */
export function findSam(): string | null {
  return SAM_CANDIDATES.find((p) => existsSync(p)) ?? null;
}

export interface SamRun { text: string; stdout: string; stderr: string }

/**
 * Write text to a temp file, run `sam -d` on it with cmds (one or more lines),
 * then `w` and `q`, and return the file's text. dot, when given, is set first
 * with a `#q0,#q1` address line (sam's own dot starts at #0,#0). Offsets are
 * characters for sam, UTF-16 units for pi9: use ASCII text.
 */
export function runSam(sam: string, text: string, cmds: string, dot?: { q0: number; q1: number }, timeoutMs = 10_000): SamRun {
  const dir = mkdtempSync(join(tmpdir(), "pi9-sam-"));
  const file = join(dir, "f");
  try {
    writeFileSync(file, text);
    const pre = dot ? `#${dot.q0},#${dot.q1}\n` : "";
    const body = cmds.endsWith("\n") ? cmds : cmds + "\n";
    const r = spawnSync(sam, ["-d", file], { input: pre + body + "w\nq\n", timeout: timeoutMs, encoding: "utf8" });
    if (r.error) throw new Error(`sam -d failed: ${r.error.message}`);
    if (r.signal) throw new Error(`sam -d killed by ${r.signal} (timeout ${timeoutMs} ms?)`);
    return { text: readFileSync(file, "utf8"), stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
