// The synthetic file tree. A Node is a file or directory; opening it gives a
// Handle that holds the per-open state (the result of a `new` request, a
// stream cursor, a directory snapshot). The wire layer (src/ninep) renders a
// node's Attr for each 9P dialect; nodes know nothing of 9P messages.

import { errs, FsError } from "./errors.js";

export interface Ctx {
  /** The user name the client attached as. */
  uname: string;
}

export interface OpenFlags { read: boolean; write: boolean; truncate: boolean; append: boolean }

export interface ReadReq {
  offset: number;
  count: number;
  /** Aborted when the request is flushed or the connection goes away. */
  signal: AbortSignal;
}

export interface WriteReq { offset: number; data: Buffer; signal: AbortSignal }

export interface Handle {
  read(req: ReadReq): Buffer | Promise<Buffer>;
  write(req: WriteReq): number | Promise<number>;
  /** Called once when the fid is clunked or the connection ends. */
  close(): void;
}

export interface Attr {
  isDir: boolean;
  perm: number; // permission bits, e.g. 0o644
  size: number;
  mtime: number; // ms since epoch
  atime: number;
  ctime: number;
  qpath: number;
  version: number;
  /** Append-only file (reported as QTAPPEND / DMAPPEND). */
  append: boolean;
  uid: string;
  gid: string;
}

let nextQpath = 1;
export const owner = { user: safeUser(), group: safeUser() };
function safeUser() {
  try { return process.env.USER || process.env.LOGNAME || "pi9"; } catch { return "pi9"; }
}

export abstract class Node {
  readonly qpath = nextQpath++;
  parent: Dir | null = null;
  mtime = Date.now();
  atime = this.mtime;
  ctime = this.mtime;
  /** Set when the node has been removed from the tree. */
  removed = false;
  abstract readonly isDir: boolean;
  /**
   * A stream: reads block until whole lines are ready and offsets do not
   * position the data (event files, inbox). The wire layer then applies the
   * rule of when a read is answered with 0 at once, which is about clients.
   */
  readonly isStream: boolean = false;
  constructor(public name: string, public perm: number) {}

  size(): number { return 0; }
  isAppend(): boolean { return false; }

  attr(): Attr {
    return {
      isDir: this.isDir, perm: this.perm, size: this.size(), mtime: this.mtime, atime: this.atime,
      ctime: this.ctime, qpath: this.qpath, version: 0, append: this.isAppend(),
      uid: owner.user, gid: owner.group,
    };
  }

  abstract open(flags: OpenFlags, ctx: Ctx): Handle | Promise<Handle>;

  /**
   * Set the file's length (O_TRUNC, setattr, wstat). Synthetic files accept a
   * length of 0 as a no-op: that is how shells open them for `>`.
   */
  truncate(size: number, _ctx: Ctx): void {
    if (size !== 0) throw errs.inval(`${this.name}: cannot set length to ${size}`);
  }

  /** Accept a time change from touch(1), setattr or wstat. */
  setTimes(atime: number | undefined, mtime: number | undefined) {
    if (atime !== undefined) this.atime = atime;
    if (mtime !== undefined) this.mtime = mtime;
  }

  remove(_ctx: Ctx): void { throw errs.perm(); }

  path(): string {
    const parts: string[] = [];
    for (let n: Node | null = this; n && n.parent; n = n.parent) parts.unshift(n.name);
    return "/" + parts.join("/");
  }

  protected checkOpen(flags: OpenFlags, readable: boolean, writable: boolean) {
    if (flags.read && !readable) throw errs.writeOnly();
    if (flags.write && !writable) throw errs.readOnly();
  }
}

export abstract class Dir extends Node {
  readonly isDir = true;
  constructor(name: string, perm = 0o555) { super(name, perm); }
  abstract list(): Node[];
  lookup(name: string): Node | undefined { return this.list().find((n) => n.name === name); }
  create(name: string, _perm: number, _isDir: boolean, _flags: OpenFlags, _ctx: Ctx): Node {
    throw errs.perm();
  }
  open(flags: OpenFlags): Handle {
    if (flags.write) throw errs.isDir();
    return { read: () => { throw errs.isDir(); }, write: () => { throw errs.isDir(); }, close() {} };
  }
}

/** A directory whose children are added and removed by the program. */
export class StaticDir extends Dir {
  private children = new Map<string, Node>();
  list() { return [...this.children.values()]; }
  override lookup(name: string) { return this.children.get(name); }
  add<T extends Node>(n: T): T {
    if (this.children.has(n.name)) throw new FsError("EEXIST", `${this.path()}: ${n.name} exists`);
    n.parent = this;
    this.children.set(n.name, n);
    this.mtime = Date.now();
    return n;
  }
  delete(name: string) {
    const n = this.children.get(name);
    if (!n) return;
    this.children.delete(name);
    n.removed = true;
    this.mtime = Date.now();
  }
  /** Walk a slash-separated path from this directory. */
  resolve(path: string): Node | undefined {
    let n: Node | undefined = this;
    for (const part of path.split("/").filter(Boolean)) {
      if (!(n instanceof Dir)) return undefined;
      n = n.lookup(part);
    }
    return n;
  }
}
