// pi9 against the Linux kernel's own 9P client (v9fs), kernels 6.1 and 6.12,
// in every dialect: 9P2000.L, 9P2000.u and legacy 9P2000. Each case boots a
// throwaway VM with ../shared/tools/v9fs-vm, mounts a fresh `pi9 serve` over
// a unix socket and runs a busybox sh script that uses /mnt/xenith as a
// person would: ls, cat new, append to a body, name a window, watch an event
// stream, tail -f a body, interrupt blocked readers, write a bad ctl line.
// The script prints what it sees; the test checks that output.
//
// One VM run is one 9P connection, so every run gets its own server (window
// ids then start at 1). At most two VMs run at once: they are CPU-bound
// under TCG. Waits inside the scripts are bounded polling loops; the kit's
// V9FS_TIMEOUT is only a guard against a hang, never a timing assertion.

import t, { Test } from "tap";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { Served, startServe } from "./helpers/serve.js";
import { gate, KERNELS, kitMissing, limiter, marks, Ran, section, v9fs, VERSIONS } from "./helpers/kit.js";

// Shell helpers shared by the scripts (busybox 1.35 ash, run with sh -e).
const PRELUDE = String.raw`
pids=""
cleanup() { for p in $pids; do kill $p 2>/dev/null || true; done; }
trap cleanup EXIT
# waitfor TENTHS CMD...: poll CMD every 0.1 s, at most TENTHS times; $i says how many.
waitfor() { n=$1; shift; i=0; while [ $i -lt $n ]; do if "$@"; then return 0; fi; sleep 0.1; i=$((i+1)); done; return 1; }
# gone PID: the process has exited (a zombie counts as exited).
gone() { st=$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null) || return 0; [ -z "$st" ] || [ "$st" = Z ]; }
# opened PID NAME: the process holds an open file whose path ends in NAME.
opened() { ls -l /proc/$1/fd 2>/dev/null | grep -q "$2\$"; }
`;

// Both mounts start alike, in the xenith directory: make a window, append to
// its body, name it, read the index.
const FIRST_WINDOW = (name: string) => String.raw`
echo "== cat new"
id=$(cat new)
echo "$id"
echo "@@ id $id"

echo "== echo hello >> body; cat body"
echo hello >> $id/body
cat $id/body

echo "== echo 'name ${name}' > ctl; cat index"
echo 'name ${name}' > $id/ctl
cat index
`;

// The whole-tree mount: the xenith directory is mnt/xenith under the mount point.
const MAIN = PRELUDE + String.raw`
echo "== ls -la"
ls -la
echo "== ls -la mnt/xenith"
ls -la mnt/xenith
cd mnt/xenith
` + FIRST_WINDOW("notes") + String.raw`

echo "== cat event > /tmp/ev & and append to body"
cat $id/event > /tmp/ev &
ev=$!; pids="$pids $ev"
waitfor 100 opened $ev /$id/event || echo "@@ fail the event reader never opened $id/event"
echo world >> $id/body
if waitfor 20 grep -q world /tmp/ev; then echo "@@ stream1 after $i tenths"; else echo "@@ stream1 missing"; fi
echo again >> $id/body
if waitfor 20 grep -q again /tmp/ev; then echo "@@ stream2 after $i tenths"; else echo "@@ stream2 missing"; fi
gone $ev || echo "@@ reader-alive yes"
cat /tmp/ev

echo "== kill -TERM the blocked event reader"
kill -TERM $ev
if waitfor 50 gone $ev; then echo "@@ sigterm exited"; else echo "@@ sigterm stuck"; fi

echo "== Ctrl-C: kill -INT a blocked cat event"
# A non-interactive shell starts background jobs with SIGINT ignored, so the
# reader runs in the foreground and a background watcher interrupts it.
rm -f /tmp/catpid
catopen() { p=$(cat /tmp/catpid 2>/dev/null) && [ -n "$p" ] && opened $p /event; }
( waitfor 100 catopen || echo "@@ fail the foreground reader never opened event"
  p=$(cat /tmp/catpid); kill -INT $p
  if waitfor 50 gone $p; then echo exited > /tmp/int; else echo stuck > /tmp/int; fi ) &
w=$!; pids="$pids $w"
rc=0; sh -c 'echo $$ > /tmp/catpid; exec cat event' > /tmp/ev2 || rc=$?
wait $w || true
echo "@@ sigint $(cat /tmp/int) rc=$rc"

echo "== after the interrupts: cat index"
cat index
echo "== echo more >> body; cat body"
echo more >> $id/body
cat $id/body

echo "== tail -f body"
tail -f $id/body > /tmp/tail &
tp=$!; pids="$pids $tp"
waitfor 100 grep -q more /tmp/tail || echo "@@ fail tail -f never showed the body"
echo later >> $id/body
if waitfor 100 grep -q later /tmp/tail; then echo "@@ tail after $i tenths"; else echo "@@ tail missing"; fi
kill $tp
cat /tmp/tail

echo "== echo bogus > ctl"
if echo bogus > $id/ctl; then echo "@@ bogus accepted"; else echo "@@ bogus refused rc=$?"; fi
cat $id/ctl

echo "== cat log"
cat log

echo "== echo note >> event while cat event waits"
# >> and not >: on 6.12, the O_TRUNC of > waits (in the guest kernel, before
# any 9P message) until a blocked read of the same file returns; measured.
cat event > /tmp/nev &
np=$!; pids="$pids $np"
waitfor 100 opened $np /xenith/event || echo "@@ fail the reader never opened event"
echo 'note from the shell' >> event
if waitfor 20 grep -q 'note from the shell' /tmp/nev; then echo "@@ post after $i tenths"; else echo "@@ post missing"; fi
kill $np
cat /tmp/nev

echo "== echo del > ctl while cat event waits"
cat $id/event > /tmp/dev 2>/dev/null &
dp=$!; pids="$pids $dp"
waitfor 100 opened $dp /$id/event || echo "@@ fail the reader never opened $id/event"
echo del > $id/ctl
if waitfor 50 gone $dp; then rc=0; wait $dp || rc=$?; echo "@@ del-reader exited rc=$rc"; else echo "@@ del-reader stuck"; fi
cat /tmp/dev
echo "== ls and index after del"
ls
cat index
echo "@@ end"
`;

// aname=/mnt/xenith: the xenith directory is the mount point itself.
const ANAME = PRELUDE + String.raw`
echo "== ls -la"
ls -la
` + FIRST_WINDOW("aname") + String.raw`
echo "== ls -la id"
ls -la $id
echo "== cat log"
cat log
echo "@@ end"
`;

interface Case { kernel: string; version: string; aname?: string; tcp?: boolean }
interface Result extends Ran { server: string }

const missing = kitMissing();
if (gate(t, "the v9fs VM kit", missing)) {
  const pool = limiter(2);
  // Never rejects: the results are awaited later, one subtest at a time, and
  // an unhandled rejection in between would end the whole file.
  const runCase = (c: Case, script: string): Promise<Result> => pool(async () => {
    let s: Served | null = null;
    try {
      s = await startServe({ tcp: c.tcp });
      const file = path.join(s.dir, "cmds.sh");
      writeFileSync(file, script);
      const r = await v9fs(c.tcp ? String(s.port) : s.sock, file, { kernel: c.kernel, version: c.version, aname: c.aname });
      return { ...r, server: s.stderr() };
    } catch (e) {
      return { code: -1, stdout: "", stderr: String((e as Error)?.stack ?? e), server: s?.stderr() ?? "" };
    } finally {
      await s?.stop();
    }
  });

  // Start every run now (two at a time); the subtests below check them in order.
  const cases: { c: Case; result: Promise<Result>; check: (t: Test, r: Result) => void }[] = [];
  for (const kernel of KERNELS) for (const version of VERSIONS) {
    const c = { kernel, version };
    cases.push({ c, result: runCase(c, MAIN), check: checkMain });
  }
  for (const kernel of KERNELS) for (const version of VERSIONS) {
    const c = { kernel, version, aname: "/mnt/xenith" };
    cases.push({ c, result: runCase(c, ANAME), check: checkAname });
  }
  // The TCP transport too (the guest reaches 127.0.0.1:PORT through QEMU's guestfwd).
  for (const c of [{ kernel: "6.1", version: "9p2000.L" }, { kernel: "6.12", version: "9p2000" }]) {
    const tc = { ...c, aname: "/mnt/xenith", tcp: true };
    cases.push({ c: tc, result: runCase(tc, ANAME), check: checkAname });
  }

  for (const { c, result, check } of cases) {
    t.test(`kernel ${c.kernel} ${c.version}${c.aname ? ` aname=${c.aname}` : ""}${c.tcp ? " over TCP" : ""}`, async (t) => {
      const r = await result;
      const diag = { stdout: r.stdout, stderr: r.stderr, server: r.server };
      t.equal(r.code, 0, "the script ran to its end with status 0", r.code === 0 ? {} : diag);
      t.match(r.stdout, /^@@ end$/m, "the script reached its end", /^@@ end$/m.test(r.stdout) ? {} : diag);
      check(t, r);
    });
  }
}

function lsHas(t: Test, ls: string, names: string[], what: string) {
  for (const n of names) t.match(ls, new RegExp(`^\\S+\\s+.*\\s${n}$`, "m"), `${what} lists ${n}`);
}

function checkMain(t: Test, r: Result) {
  const out = r.stdout;
  const m = marks(out);
  lsHas(t, section(out, "ls -la"), ["mnt", "n"], "ls -la of the root");
  const lsx = section(out, "ls -la mnt/xenith");
  lsHas(t, lsx, ["new", "index", "focus", "event", "log"], "ls -la mnt/xenith");
  t.match(lsx, /^-r--r--r--\s.*\sindex$/m, "index is a read-only regular file");
  t.match(lsx, /^-rw-r--r--\s.*\sevent$/m, "event is a regular file, 0644");

  const id = m.get("id") ?? "";
  t.match(id, /^\d+$/, "cat new prints a window id");
  t.equal(section(out, "cat new").trim(), id, "cat new printed exactly the id");
  t.equal(section(out, "echo hello >> body; cat body"), "hello", "the appended line is in the body");
  t.match(section(out, "echo 'name notes' > ctl; cat index"), new RegExp(`^${id} window idle notes \\S+$`, "m"), "index shows the new name");

  // Streaming: each line arrives while the reader is still blocked in read(2).
  t.match(m.get("stream1") ?? "", /^after \d+ tenths$/, "the insert event reached the blocked reader");
  t.match(m.get("stream2") ?? "", /^after \d+ tenths$/, "a second event arrived too, line by line");
  t.equal(m.get("reader-alive"), "yes", "the reader was still reading (streaming, not end of file)");
  const ev = section(out, "cat event > /tmp/ev & and append to body");
  t.match(ev, /^insert 6 12 world\\n$/m, "event line: insert 6 12 world\\n");
  t.match(ev, /^insert 12 18 again\\n$/m, "event line: insert 12 18 again\\n");

  // Interrupted readers exit promptly and the mount keeps working.
  t.equal(m.get("sigterm"), "exited", "SIGTERM ends a reader blocked in event");
  t.equal(m.get("sigint"), "exited rc=130", "SIGINT (Ctrl-C) ends a reader blocked in event");
  t.match(section(out, "after the interrupts: cat index"), new RegExp(`^${id} window idle notes `, "m"), "index still reads after the interrupts");
  t.equal(section(out, "echo more >> body; cat body"), "hello\nworld\nagain\nmore", "the body still appends and reads");

  t.match(m.get("tail") ?? "", /^after \d+ tenths$/, "tail -f showed a later append");
  t.match(section(out, "tail -f body"), /^later$/m, "tail -f output has the appended line");

  t.match(m.get("bogus") ?? "", /^refused rc=[1-9]\d*$/, "a bad ctl line fails the write");
  t.match(section(out, "echo bogus > ctl"), new RegExp(`^${id} window idle notes \\S+ 29 1$`, "m"), "the bad ctl write changed nothing");
  const log = section(out, "cat log");
  t.match(log, new RegExp(`^new ${id} window -$`, "m"), "log has the new window");
  t.match(log, new RegExp(`^name ${id} notes$`, "m"), "log has the rename");
  t.match(m.get("post") ?? "", /^after \d+ tenths$/, "a line written to event (>>) reached a blocked reader");
  t.match(section(out, "echo note >> event while cat event waits"), /^note from the shell$/m, "as written");
  t.match(m.get("del-reader") ?? "", /^exited rc=[1-9]\d*$/, "deleting the window ends a blocked event reader with an error");
  t.match(section(out, "echo del > ctl while cat event waits"), /^del$/m, "after it read the del event");
  const after = section(out, "ls and index after del").split("\n");
  t.notOk(after.includes(id), "the window is gone from ls");
  t.notOk(after.some((l) => l.startsWith(`${id} `)), "and from index");
  t.notOk([...m.keys()].includes("fail"), "no step reported a failure", m.has("fail") ? { fail: m.get("fail") } : {});
  t.comment(`polls (0.1 s each): event ${m.get("stream1")}, ${m.get("stream2")}; tail -f ${m.get("tail")}; post ${m.get("post")}`);
}

function checkAname(t: Test, r: Result) {
  const out = r.stdout;
  const m = marks(out);
  lsHas(t, section(out, "ls -la"), ["new", "index", "focus", "event", "log"], "ls -la of the mount point (aname=/mnt/xenith)");
  const id = m.get("id") ?? "";
  t.match(id, /^\d+$/, "cat new prints a window id");
  t.equal(section(out, "echo hello >> body; cat body"), "hello", "the appended line is in the body");
  t.match(section(out, "echo 'name aname' > ctl; cat index"), new RegExp(`^${id} window idle aname `, "m"), "index shows the name");
  lsHas(t, section(out, "ls -la id"), ["body", "ctl", "event", "tag"], "the window directory");
  t.match(section(out, "cat log"), new RegExp(`^name ${id} aname$`, "m"), "log has the rename");
}
