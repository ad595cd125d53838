// Xenith's window files through the Linux kernel client: structural edits
// through ctl and edit, sel, dot, addr/data, and a background `cat event`
// that shows the matching insert/delete/sel lines as they happen. Kernels
// 6.1 and 6.12 with 9P2000.L, and 6.1 with legacy 9P2000; the attach name
// /mnt/xenith makes the window directory the mount's root.

import t from "tap";
import { eachKernel, section } from "./helpers/kit.js";

const SCRIPT = String.raw`
pids=""
cleanup() { for p in $pids; do kill $p 2>/dev/null || true; done; }
trap cleanup EXIT
waitfor() { n=$1; shift; i=0; while [ $i -lt $n ]; do if "$@"; then return 0; fi; sleep 0.1; i=$((i+1)); done; return 1; }
opened() { ls -l /proc/$1/fd 2>/dev/null | grep -q "$2\$"; }
id=$(cat new)
printf 'func a() { foo(); }\nfoo\nfunc b() { foo(); bar(); }\n' >> $id/body
cat $id/event > /tmp/ev &
ev=$!; pids="$pids $ev"
waitfor 50 opened $ev event
echo "== ctl edit"
echo 'x/func.*{[^}]*}/ x/foo/ c/bar/' > $id/ctl
cat $id/body
echo "== events after ctl edit"
waitfor 50 grep -q 'insert 11 14 bar' /tmp/ev && cat /tmp/ev
echo "== edit file"
echo ',s/bar/baz/g' > $id/edit
cat $id/body
echo "== edit output"
exec 3<>$id/edit; echo '2p' >&3; cat <&3; exec 3<&-
echo "== sel"
echo '11 14' > $id/sel
cat $id/sel
waitfor 50 grep -q 'sel 11 14' /tmp/ev && echo "sel event seen"
echo "== dot"
echo '2 1' > $id/dot
cat $id/dot
echo "== addr data"
echo '/foo/' > $id/addr
cat $id/addr
printf 'FOO' > $id/data
echo '2' > $id/addr
cat $id/data
echo "== bad edits"
echo 'x/(/ d' > $id/ctl 2>/dev/null && echo "bad regex accepted" || echo "bad regex refused"
echo '/nomatch/ d' > $id/edit 2>/dev/null && echo "bad address accepted" || echo "bad address refused"
echo '5 999' > $id/sel 2>/dev/null && echo "bad sel accepted" || echo "bad sel refused"
echo "== body after"
cat $id/body
echo "== errors"
cat nosuchfile 2>&1 || true
(echo x > index) 2>&1 || true
echo "== all events"
waitfor 50 grep -q 'insert 20 23 FOO' /tmp/ev
cat /tmp/ev
`;

const EXPECT_BODY = "func a() { baz(); }\nFOO\nfunc b() { baz(); baz(); }";

t.test("xenith window files under v9fs", (t) => eachKernel(t, SCRIPT, [["6.1", "9p2000.L"], ["6.12", "9p2000.L"], ["6.1", "9p2000"]],
  "/mnt/xenith", (t, out) => {
  t.equal(section(out, "ctl edit"), "func a() { bar(); }\nfoo\nfunc b() { bar(); bar(); }");
  t.equal(section(out, "events after ctl edit"), "delete 35 38\ninsert 35 38 bar\ndelete 11 14\ninsert 11 14 bar",
    "the background cat saw each change as it happened, from the open on");
  t.equal(section(out, "edit file"), "func a() { baz(); }\nfoo\nfunc b() { baz(); baz(); }");
  t.equal(section(out, "edit output"), "foo", "p's output read from the same open edit file");
  t.equal(section(out, "sel"), "11 14\nsel event seen");
  t.equal(section(out, "dot"), "2 1");
  t.equal(section(out, "addr data"), "20 23\nFOO\nfunc b() { baz(); baz(); }", "addr in bytes; data replaced it; data reads from addr");
  t.equal(section(out, "bad edits"), "bad regex refused\nbad address refused\nbad sel refused");
  t.equal(section(out, "body after"), EXPECT_BODY, "failed commands changed nothing");
  t.match(section(out, "all events"), /delete 20 23\ninsert 20 23 FOO/);
  t.match(section(out, "errors"), /nosuchfile.*No such file or directory\n.*Permission denied/s,
    "errors of the tree map to errno names in every dialect (9P2000 strings match Linux's table)");
}));
