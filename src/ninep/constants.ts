// 9P protocol constants shared by the codec, the server and the client.

export type Dialect = "9P2000" | "9P2000.u" | "9P2000.L";

export const NOTAG = 0xffff;
export const NOFID = 0xffffffff;
export const NONUNAME = 0xffffffff;

/** Size of the Tread/Rread header overhead (plan9's IOHDRSZ). */
export const IOHDRSZ = 24;
export const MAX_MSIZE = 1 << 20;
export const MIN_MSIZE = 256;
/** Twalk carries at most this many names. */
export const MAXWELEM = 16;

export const QTDIR = 0x80;
export const QTAPPEND = 0x40;
export const QTEXCL = 0x20;
export const QTAUTH = 0x08;
export const QTTMP = 0x04;
export const QTFILE = 0x00;

export const DMDIR = 0x80000000;
export const DMAPPEND = 0x40000000;
export const DMEXCL = 0x20000000;
export const DMAUTH = 0x08000000;
export const DMTMP = 0x04000000;

// Topen modes (9P2000 / .u)
export const OREAD = 0;
export const OWRITE = 1;
export const ORDWR = 2;
export const OEXEC = 3;
export const OTRUNC = 0x10;
export const ORCLOSE = 0x40;
export const OAPPEND = 0x80; // .u: append flag (Linux sends 0x81 for >>)

// Linux open flags as carried by Tlopen/Tlcreate (x86 values, as the kernel sends them)
export const L_O_ACCMODE = 0o3;
export const L_O_WRONLY = 0o1;
export const L_O_RDWR = 0o2;
export const L_O_CREAT = 0o100;
export const L_O_EXCL = 0o200;
export const L_O_TRUNC = 0o1000;
export const L_O_APPEND = 0o2000;

// Linux stat mode bits for .L
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

// Tgetattr request mask bits
export const P9_GETATTR_BASIC = 0x7ff;
export const P9_GETATTR_ALL = 0x3fff;

// Tsetattr valid bits
export const P9_SETATTR_MODE = 0x1;
export const P9_SETATTR_UID = 0x2;
export const P9_SETATTR_GID = 0x4;
export const P9_SETATTR_SIZE = 0x8;
export const P9_SETATTR_ATIME = 0x10;
export const P9_SETATTR_MTIME = 0x20;
export const P9_SETATTR_CTIME = 0x40;
export const P9_SETATTR_ATIME_SET = 0x80;
export const P9_SETATTR_MTIME_SET = 0x100;

// Tlock
export const P9_LOCK_TYPE_RDLCK = 0;
export const P9_LOCK_TYPE_WRLCK = 1;
export const P9_LOCK_TYPE_UNLCK = 2;
export const P9_LOCK_SUCCESS = 0;

/** Message type numbers. R-messages are T + 1. */
export const MT = {
  Tlerror: 6, Rlerror: 7,
  Tstatfs: 8, Rstatfs: 9,
  Tlopen: 12, Rlopen: 13,
  Tlcreate: 14, Rlcreate: 15,
  Tsymlink: 16, Rsymlink: 17,
  Tmknod: 18, Rmknod: 19,
  Trename: 20, Rrename: 21,
  Treadlink: 22, Rreadlink: 23,
  Tgetattr: 24, Rgetattr: 25,
  Tsetattr: 26, Rsetattr: 27,
  Txattrwalk: 30, Rxattrwalk: 31,
  Txattrcreate: 32, Rxattrcreate: 33,
  Treaddir: 40, Rreaddir: 41,
  Tfsync: 50, Rfsync: 51,
  Tlock: 52, Rlock: 53,
  Tgetlock: 54, Rgetlock: 55,
  Tlink: 70, Rlink: 71,
  Tmkdir: 72, Rmkdir: 73,
  Trenameat: 74, Rrenameat: 75,
  Tunlinkat: 76, Runlinkat: 77,
  Tversion: 100, Rversion: 101,
  Tauth: 102, Rauth: 103,
  Tattach: 104, Rattach: 105,
  Terror: 106, Rerror: 107,
  Tflush: 108, Rflush: 109,
  Twalk: 110, Rwalk: 111,
  Topen: 112, Ropen: 113,
  Tcreate: 114, Rcreate: 115,
  Tread: 116, Rread: 117,
  Twrite: 118, Rwrite: 119,
  Tclunk: 120, Rclunk: 121,
  Tremove: 122, Rremove: 123,
  Tstat: 124, Rstat: 125,
  Twstat: 126, Rwstat: 127,
} as const;

export type MsgName = keyof typeof MT;

/** Linux errno values used on the wire (.u and .L carry numbers). */
export const E = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EFAULT: 14, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENOTDIR: 20, EISDIR: 21,
  EINVAL: 22, EMFILE: 24, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30,
  ERANGE: 34, ENAMETOOLONG: 36, ENOSYS: 38, ENOTEMPTY: 39, ENODATA: 61,
  EPROTO: 71, EBADMSG: 74, EMSGSIZE: 90, EOPNOTSUPP: 95, ECONNRESET: 104,
  ETIMEDOUT: 110, ECANCELED: 125,
} as const;
export type ErrnoName = keyof typeof E;
