// Scripted agents through the Linux kernel client: a busybox shell loop is
// the agent. It reads the window's inbox, answers in body and reports its
// status on the window's event file, as xenith(4) shows. Kernels 6.1 and
// 6.12 with 9P2000.L, and 6.1 with legacy 9P2000.

import t from "tap";
import { eachKernel, section } from "./helpers/kit.js";

const SCRIPT = String.raw`
waitfor() { n=$1; shift; i=0; while [ $i -lt $n ]; do if "$@"; then return 0; fi; sleep 0.1; i=$((i+1)); done; return 1; }
exec 3<>new; echo 'agent name=echoer' >&3; read id <&3; exec 3<&-
echo "== index"
cat index
# Each reader marks that its file is open (the redirection is made before
# the group runs), and the prompts wait for both marks: no sleep.
{ : > /tmp/ev-open; exec cat; } < $id/event > /tmp/ev &
evpid=$!
{ : > /tmp/inbox-open
  while read -r verb text; do
    echo "status working" >> $id/event
    echo "$verb: $text" >> $id/body
    echo "status idle" >> $id/event
  done; } < $id/inbox &
loop=$!
waitfor 100 test -e /tmp/ev-open || echo "event was never opened"
waitfor 100 test -e /tmp/inbox-open || echo "inbox was never opened"
echo 'prompt hello' > $id/ctl
echo 'steer go left' > $id/ctl
echo 'followup and then?' > $id/ctl
echo 'abort' > $id/ctl
waitfor 50 grep -q '^abort: ' $id/body || true
echo "== body"
cat $id/body
echo "== events"
waitfor 20 grep -q 'status idle' /tmp/ev || true
grep -E '^(prompt|steer|followup|status)' /tmp/ev
echo "== info"
grep -E '^(kind|status)' $id/info
echo "== refusals"
echo 'agent' > new 2>/dev/null && echo "nameless agent accepted" || echo "nameless agent refused"
echo 'agent name=x cwd=/nonexistent/place' > new 2>/dev/null && echo "bad cwd accepted" || echo "bad cwd refused"
echo 'prompt' > $id/ctl 2>/dev/null && echo "empty prompt accepted" || echo "empty prompt refused"
kill $loop $evpid 2>/dev/null || true
`;

t.test("a shell loop as a scripted agent under v9fs", (t) => eachKernel(t, SCRIPT, [["6.1", "9p2000.L"], ["6.12", "9p2000.L"], ["6.1", "9p2000"]],
  "/mnt/xenith", (t, out) => {
  t.equal(section(out, "index"), "1 script idle echoer -", "the window is a scripted agent");
  t.equal(section(out, "body"), "prompt: hello\nsteer: go left\nfollowup: and then?\nabort: ",
    "the loop read every message from the inbox, in order, and answered in body");
  // The user's lines and the program's status lines interleave as they race.
  const evs = section(out, "events").split("\n");
  t.same(evs.filter((l) => !l.startsWith("status")), ["prompt hello", "steer go left", "followup and then?"],
    "the window's event stream shows what the user sent, in order");
  t.ok(evs.includes("status working") && evs.includes("status idle"), "and the status lines the program wrote");
  t.equal(section(out, "info"), "kind script\nstatus idle");
  t.equal(section(out, "refusals").trimEnd(), "nameless agent refused\nbad cwd refused\nempty prompt refused");
}));
