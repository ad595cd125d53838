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

/**
 * Conventional messages. The Linux client maps a 9P2000 error string to an
 * errno only when it matches its table exactly (net/9p/error.c), so errors
 * of the tree itself use those strings with nothing appended; anything else
 * shows as "Unknown error 526" there.
 */
export const errs = {
  /** With `what` (e.g. "window 7"), a message for a named thing that is missing, not a path. */
  notFound: (what?: string) => new FsError("ENOENT", what ? `no such ${what}` : "file does not exist"),
  perm: (what = "permission denied") => new FsError("EACCES", what),
  notDir: () => new FsError("ENOTDIR", "not a directory"),
  isDir: () => new FsError("EISDIR", "Is a directory"),
  exists: () => new FsError("EEXIST", "file already exists"),
  readOnly: () => new FsError("EACCES", "permission denied"),
  writeOnly: () => new FsError("EACCES", "permission denied"),
  inval: (m: string) => new FsError("EINVAL", m),
  flushed: () => new FsError("ECANCELED", "interrupted"),
};
