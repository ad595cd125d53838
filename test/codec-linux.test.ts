// Byte-level layouts of the 9P2000.L messages test/codec.test.ts leaves unchecked:
// lcreate, lock, getlock, renameat, unlinkat, mkdir, xattrwalk.
//
// Every expected frame below is written out by hand, in hex, from two sources
// that are independent of src/ninep/codec.ts:
//   - field order and widths: diod's protocol description, chaos/diod
//     protocol.md ("9P2000.L Operations"), e.g.
//       size[4] Tlcreate tag[2] fid[4] name[s] flags[4] mode[4] gid[4]
//       size[4] Rlcreate tag[2] qid[13] iounit[4]
//       size[4] Tlock tag[2] fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s]
//       size[4] Rlock tag[2] status[1]
//       size[4] Tgetlock tag[2] fid[4] type[1] start[8] length[8] proc_id[4] client_id[s]
//       size[4] Rgetlock tag[2] type[1] start[8] length[8] proc_id[4] client_id[s]
//       size[4] Tmkdir tag[2] dfid[4] name[s] mode[4] gid[4]
//       size[4] Rmkdir tag[2] qid[13]
//       size[4] Trenameat tag[2] olddirfid[4] oldname[s] newdirfid[4] newname[s]
//       size[4] Rrenameat tag[2]
//       size[4] Tunlinkat tag[2] dirfd[4] name[s] flags[4]
//       size[4] Runlinkat tag[2]
//       size[4] Txattrwalk tag[2] fid[4] newfid[4] name[s]
//       size[4] Rxattrwalk tag[2] size[8]
//     with integers little-endian, name[s] = length[2] + bytes (no NUL), and
//     qid[13] = type[1] version[4] path[8]. Where a message appears in that
//     document's sample session (Tlcreate/Rlcreate of 'foo', Tmkdir/Rmkdir of
//     'newdir') the same values are used here.
//   - type numbers: Linux include/net/9p/9p.h, enum p9_msg_t:
//       P9_TXATTRWALK = 30, P9_TLCREATE = 14, P9_TLOCK = 52, P9_TGETLOCK = 54,
//       P9_TMKDIR = 72, P9_TRENAMEAT = 74, P9_TUNLINKAT = 76 (each R = T + 1).
//
// Each case checks encode(msg) against the hand-written bytes, and decode(bytes)
// against msg.

import t, { Test } from "tap";
import { decode, encode, Msg } from "../src/ninep/codec.js";

/** Hex with spaces allowed, for readability: one group per field. */
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

function check(t: Test, what: string, msg: Msg, bytes: string) {
  const want = hex(bytes);
  t.equal(want.readUInt32LE(0), want.length, `${what}: hand-written size field matches the frame length`);
  t.equal(encode(msg, "9P2000.L").toString("hex"), want.toString("hex"), `${what}: encode gives the documented bytes`);
  t.same(decode(want, "9P2000.L"), msg, `${what}: decode of the documented bytes`);
}


t.test("lcreate (diod sample session: echo hello >/tmp/9/foo)", async (t) => {
  // P9_TLCREATE tag 1 fid 2 name 'foo' flags 0x8241 mode 0100644 gid 500
  check(t, "Tlcreate", { type: "Tlcreate", tag: 1, fid: 2, name: "foo", flags: 0x8241, mode: 0o100644, gid: 500 },
    "1c000000 0e 0100  02000000  0300 666f6f  41820000  a4810000  f4010000");
  // P9_RLCREATE tag 1 qid (00000000002c1bd1 0 '') iounit 4096
  check(t, "Rlcreate", { type: "Rlcreate", tag: 1, qid: { type: 0, version: 0, path: 0x2c1bd1 }, iounit: 4096 },
    "18000000 0f 0100  00 00000000 d11b2c0000000000  00100000");
});

t.test("lock", async (t) => {
  // type P9_LOCK_TYPE_WRLCK (1), flags P9_LOCK_FLAGS_BLOCK (1), start 0x100, length 0x20, proc_id 1234, client_id 'host'
  check(t, "Tlock", {
    type: "Tlock", tag: 3, fid: 5, locktype: 1, flags: 1, start: 0x100, length: 0x20, proc_id: 1234, client_id: "host",
  }, "2a000000 34 0300  05000000  01  01000000  0001000000000000  2000000000000000  d2040000  0400 686f7374");
  // status P9_LOCK_BLOCKED (1)
  check(t, "Rlock", { type: "Rlock", tag: 3, status: 1 }, "08000000 35 0300  01");
});

t.test("getlock", async (t) => {
  // type P9_LOCK_TYPE_RDLCK (0), start 10, length 5, proc_id 99, client_id 'h'
  check(t, "Tgetlock", {
    type: "Tgetlock", tag: 4, fid: 5, locktype: 0, start: 10, length: 5, proc_id: 99, client_id: "h",
  }, "23000000 36 0400  05000000  00  0a00000000000000  0500000000000000  63000000  0100 68");
  // type P9_LOCK_TYPE_UNLCK (2): no conflicting lock
  check(t, "Rgetlock", {
    type: "Rgetlock", tag: 4, locktype: 2, start: 10, length: 5, proc_id: 99, client_id: "h",
  }, "1f000000 37 0400  02  0a00000000000000  0500000000000000  63000000  0100 68");
});

t.test("renameat", async (t) => {
  check(t, "Trenameat", { type: "Trenameat", tag: 6, olddirfid: 1, oldname: "a", newdirfid: 2, newname: "bc" },
    "16000000 4a 0600  01000000  0100 61  02000000  0200 6263");
  check(t, "Rrenameat", { type: "Rrenameat", tag: 6 }, "07000000 4b 0600");
});

t.test("unlinkat", async (t) => {
  // flags AT_REMOVEDIR (0x200). diod calls the first field dirfd; the codec calls it dirfid.
  check(t, "Tunlinkat", { type: "Tunlinkat", tag: 7, dirfid: 1, name: "d", flags: 0x200 },
    "12000000 4c 0700  01000000  0100 64  00020000");
  check(t, "Runlinkat", { type: "Runlinkat", tag: 7 }, "07000000 4d 0700");
});

t.test("mkdir (diod sample session: mkdir /tmp/9/newdir)", async (t) => {
  // P9_TMKDIR tag 1 fid 1 name 'newdir' mode 040755 gid 500
  check(t, "Tmkdir", { type: "Tmkdir", tag: 1, dfid: 1, name: "newdir", mode: 0o40755, gid: 500 },
    "1b000000 48 0100  01000000  0600 6e6577646972  ed410000  f4010000");
  // P9_RMKDIR tag 1 qid (00000000002c1bd1 0 'd'): qid type P9_QTDIR (0x80)
  check(t, "Rmkdir", { type: "Rmkdir", tag: 1, qid: { type: 0x80, version: 0, path: 0x2c1bd1 } },
    "14000000 49 0100  80 00000000 d11b2c0000000000");
});

t.test("xattrwalk", async (t) => {
  check(t, "Txattrwalk", { type: "Txattrwalk", tag: 8, fid: 1, newfid: 9, name: "user.x" },
    "17000000 1e 0800  01000000  09000000  0600 757365722e78");
  // An empty name asks for the list of attributes.
  check(t, "Txattrwalk (list)", { type: "Txattrwalk", tag: 8, fid: 1, newfid: 9, name: "" },
    "11000000 1e 0800  01000000  09000000  0000");
  // size[8] beyond 32 bits
  check(t, "Rxattrwalk", { type: "Rxattrwalk", tag: 8, size: 0x100000001 },
    "0f000000 1f 0800  0100000001000000");
});
