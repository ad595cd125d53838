// The one token check. 9P's attach (aname `token=<t>` or Tauth) and the HTTP
// front (`?token=`, `Authorization: Bearer`) both call tokenMatches, so a
// token means the same thing on every listener. Neutral ground: neither the
// wire nor HTTP owns it.

import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Exact comparison that takes the same time wherever the strings differ:
 * both sides are hashed first, so even the lengths are compared in constant
 * time.
 */
export function tokenMatches(given: string | null | undefined, secret: string): boolean {
  if (given === undefined || given === null) return false;
  const h = (s: string) => createHash("sha256").update(s, "utf8").digest();
  return timingSafeEqual(h(given), h(secret)) && given.length === secret.length;
}
