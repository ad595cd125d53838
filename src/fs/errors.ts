// Errors raised by file tree nodes. The code is a POSIX errno name; the wire
// layer turns it into a number (.u, .L) and sends the message as the 9P2000
// error string, so the message is what a person sees on a 9P2000 client.

export type ErrCode =
  | "EPERM" | "ENOENT" | "EIO" | "EBADF" | "EAGAIN" | "EACCES" | "EEXIST" | "ENOTDIR" | "EISDIR"
  | "EINVAL" | "EFBIG" | "ENOSPC" | "ESPIPE" | "EROFS" | "ERANGE" | "ENAMETOOLONG" | "ENOTEMPTY"
  | "ENODATA" | "EOPNOTSUPP" | "ECANCELED" | "EBUSY" | "EMFILE" | "ETIMEDOUT" | "EPROTO";

export class FsError extends Error {
  constructor(readonly code: ErrCode, message: string) { super(message); }
}

/** Conventional messages, worded as Plan 9 does so 9P2000 clients recognise them. */
export const errs = {
  notFound: (name?: string) => new FsError("ENOENT", name ? `file does not exist: ${name}` : "file does not exist"),
  perm: (what = "permission denied") => new FsError("EACCES", what),
  notDir: () => new FsError("ENOTDIR", "not a directory"),
  isDir: () => new FsError("EISDIR", "is a directory"),
  exists: () => new FsError("EEXIST", "file already exists"),
  readOnly: () => new FsError("EACCES", "permission denied: file is read-only"),
  writeOnly: () => new FsError("EACCES", "permission denied: file is write-only"),
  inval: (m: string) => new FsError("EINVAL", m),
  flushed: () => new FsError("ECANCELED", "interrupted"),
};
