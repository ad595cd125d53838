// Messages generated from the codec's spec table, for round-trip and fuzz tests.

import { Msg, Qid, specOf, Stat } from "../../src/ninep/codec.js";
import type { Dialect, MsgName } from "../../src/ninep/constants.js";
import type { Rng } from "./rand.js";

export function genQid(rng: Rng): Qid {
  return { type: rng.pick([0, 0x80, 0x40, 0x08]), version: rng.u32(), path: rng.u64() };
}

export function genStat(rng: Rng, d: Dialect): Stat {
  const st: Stat = {
    type: rng.int(0x10000), dev: rng.u32(), qid: genQid(rng), mode: rng.u32(), atime: rng.u32(), mtime: rng.u32(),
    length: rng.u64(), name: rng.str(), uid: rng.str(), gid: rng.str(), muid: rng.str(),
  };
  if (d === "9P2000.u") { st.extension = rng.str(); st.n_uid = rng.u32(); st.n_gid = rng.u32(); st.n_muid = rng.u32(); }
  return st;
}

/** A random value of one field kind of the spec table. */
export function genValue(rng: Rng, kind: string, d: Dialect): unknown {
  switch (kind) {
    case "u8": return rng.int(0x100);
    case "u16": return rng.int(0x10000);
    case "u32": case "u32opt": return rng.u32();
    case "u64": return rng.u64();
    case "s": return rng.str(20);
    case "qid": return genQid(rng);
    case "qids": return Array.from({ length: rng.int(17) }, () => genQid(rng));
    case "strs": return Array.from({ length: rng.int(17) }, () => rng.str(8));
    case "data": return rng.bytes(rng.int(200));
    case "stat": return genStat(rng, d);
  }
  throw new Error(`no generator for ${kind}`);
}

/** A message with every field of its spec filled at random; `bias` may override a field. */
export function genMsg(rng: Rng, name: MsgName, d: Dialect, bias?: (field: string, kind: string) => unknown): Msg {
  const m: Msg = { type: name, tag: rng.int(0x10000) };
  for (const [f, kind] of specOf(name, d)) {
    const v = bias?.(f, kind);
    m[f] = v !== undefined ? v : genValue(rng, kind, d);
  }
  return m;
}
