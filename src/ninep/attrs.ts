// Rendering a node's dialect-neutral attributes (src/fs Attr) for each 9P
// dialect: the qid, the 9P2000/9P2000.u stat and the 9P2000.L getattr and
// statfs replies. One place decides what a client sees of a file's type,
// mode, size, owner and times.

import type { Attr } from "../fs/node.js";
import type { Qid, Stat } from "./codec.js";
import { Dialect, DMAPPEND, DMDIR, P9_GETATTR_BASIC, QTAPPEND, QTDIR, QTFILE, S_IFDIR, S_IFREG } from "./constants.js";

/** Filesystem type reported by Rstatfs: unknown to coreutils, so `tail -f` polls. */
export const PI9_FSTYPE = 0x70693921; // "pi9!"

export function qidOf(a: Attr): Qid {
  return { type: a.isDir ? QTDIR : a.append ? QTAPPEND : QTFILE, version: a.version, path: a.qpath };
}

/** The numeric owner of every file: the user pi9 runs as. */
export function numericIds() {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

/** The stat of a file named `name` (Rstat, 9P2000 directory reads); .u adds numeric ids. */
export function statOf(a: Attr, name: string, dialect: Dialect): Stat {
  let mode = a.perm & 0o777;
  if (a.isDir) mode |= DMDIR;
  if (a.append) mode |= DMAPPEND;
  const st: Stat = {
    type: 0, dev: 0, qid: qidOf(a), mode, atime: Math.floor(a.atime / 1000), mtime: Math.floor(a.mtime / 1000),
    length: a.isDir ? 0 : a.size, name, uid: a.uid, gid: a.gid, muid: a.uid,
  };
  if (dialect === "9P2000.u") {
    const ids = numericIds();
    st.extension = ""; st.n_uid = ids.uid; st.n_gid = ids.gid; st.n_muid = ids.uid;
  }
  return st;
}

/** The fields of Rgetattr (9P2000.L) for a file. */
export function getattrOf(a: Attr) {
  const ids = numericIds();
  const sec = (ms: number) => Math.floor(ms / 1000), nsec = (ms: number) => Math.floor((ms % 1000) * 1e6);
  return {
    valid: P9_GETATTR_BASIC, qid: qidOf(a),
    mode: (a.isDir ? S_IFDIR : S_IFREG) | (a.perm & 0o777), uid: ids.uid, gid: ids.gid, nlink: a.isDir ? 2 : 1,
    rdev: 0, size: a.isDir ? 0 : a.size, blksize: 4096, blocks: Math.ceil(a.size / 512),
    atime_sec: sec(a.atime), atime_nsec: nsec(a.atime), mtime_sec: sec(a.mtime), mtime_nsec: nsec(a.mtime),
    ctime_sec: sec(a.ctime), ctime_nsec: nsec(a.ctime), btime_sec: 0, btime_nsec: 0, gen: 0, data_version: 0,
  };
}

/** The fields of Rstatfs: a type coreutils does not know, so `tail -f` polls instead of waiting on inotify. */
export function statfsOf() {
  return { fstype: PI9_FSTYPE, bsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, fsid: 0, namelen: 255 };
}
