// A spawned pi agent driven from a shell through the Linux kernel client:
// `spawn` written to /mnt/xenith/new with the id read back on the same open
// file, `prompt` written to ctl, a background `cat event` streaming the
// turn, body, info, refusals, a bash tool call and its file on disk, steer
// and abort during a paced reply, and kill. The server runs real pi children with
// the network-free faux model (test/fixtures/faux-provider.ts). Kernels 6.1
// and 6.12 with 9P2000.L, and 6.1 with legacy 9P2000.

import t from "tap";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startServe } from "./helpers/serve.js";
import { gate, kitMissing, limiter, marks, section, v9fs } from "./helpers/kit.js";
import { piServeArgs, processesIn } from "./helpers/pi.js";

const script = (dir: string) => String.raw`
pids=""
cleanup() { for p in $pids; do kill $p 2>/dev/null || true; done; }
trap cleanup EXIT
waitfor() { n=$1; shift; i=0; while [ $i -lt $n ]; do if "$@"; then return 0; fi; sleep 0.2; i=$((i+1)); done; return 1; }
opened() { ls -l /proc/$1/fd 2>/dev/null | grep -q "$2\$"; }
DIR=${dir}/vm
exec 3<>new
echo "spawn $DIR mkdir name=vm model=faux/faux-1" >&3
read id <&3
exec 3<&-
echo "@@ id $id"
echo "== index"
grep "^$id " index
cat $id/event > /tmp/ev &
ev=$!; pids="$pids $ev"
waitfor 50 opened $ev event
echo 'prompt say hi' > $id/ctl
# pi answers in well under a second here; the bound is only a guard.
waitfor 300 grep -q '^agent_end$' /tmp/ev || echo "no agent_end"
echo "== events"
grep -E '^(prompt |agent_start$|turn_start |turn_end |agent_end$|status )' /tmp/ev
echo "== text"
sed -n 's/^text //p' /tmp/ev | tr -d '\n'; echo
echo "== body"
cat $id/body
echo "== info"
grep -E '^(kind|status|cwd|model) ' $id/info
grep -q '^pid [0-9][0-9]*$' $id/info && echo "pid ok"
grep -q '^session [0-9a-f-]*$' $id/info && echo "session ok"
echo "== tools"
cut -f1 $id/tools | sort
echo "== refusals"
echo 'model nope/missing' > $id/ctl 2>/dev/null && echo "bad model accepted" || echo "bad model refused"
echo 'spawn /etc' > new 2>/dev/null && echo "spawn outside the roots accepted" || echo "spawn outside the roots refused"
echo "spawn $DIR/missing" > new 2>/dev/null && echo "missing folder accepted" || echo "missing folder refused"
echo "== error events"
waitfor 50 grep -q '^error ' /tmp/ev
grep '^error ' /tmp/ev
# phase: follow ev$1 from now on
follow() { cat $id/event > /tmp/ev$1 & f=$!; pids="$pids $f"; waitfor 50 opened $f event; }
follow b
echo 'prompt run bash' > $id/ctl
waitfor 300 grep -q '^agent_end$' /tmp/evb || echo "no agent_end"
echo "== bash tool"
grep '^tool_start ' /tmp/evb | cut -d' ' -f1,3
grep '^tool_end ' /tmp/evb | cut -d' ' -f1,3-
follow s
echo 'prompt write a lot' > $id/ctl
waitfor 100 grep -q '^text ' /tmp/evs
echo 'steer say steered' > $id/ctl
waitfor 300 grep -q '^agent_end$' /tmp/evs || echo "no agent_end"
echo "== steer"
grep -E '^(prompt|steer|followup) |^agent_(start|end)$' /tmp/evs
tail -2 $id/body
follow a
echo 'prompt write a lot' > $id/ctl
waitfor 100 grep -q '^text ' /tmp/eva
echo abort > $id/ctl
waitfor 100 grep -q '^agent_end$' /tmp/eva || echo "no agent_end"
echo "== abort"
cut -d' ' -f3 $id/ctl
tail -1 $id/messages | grep -o '"stopReason":"[a-z]*"'
echo "== kill"
echo kill > $id/ctl
cut -d' ' -f3 $id/ctl
grep '^exit ' $id/info
echo "== end"
`;

t.test("a spawned pi agent under v9fs", async (t) => {
  if (!gate(t, "the v9fs VM kit", kitMissing())) return;
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), "pi9-v9fs-agents-")));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const lim = limiter(2);
  const cases = [["6.1", "9p2000.L"], ["6.12", "9p2000.L"], ["6.1", "9p2000"]] as const;
  await Promise.all(cases.map(([kernel, version]) => lim(async () => {
    const dir = path.join(base, `${kernel}-${version}`);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "agents.sh");
    writeFileSync(file, script(dir));
    let s;
    try { s = await startServe({ args: piServeArgs(dir) }); }
    catch (e) { t.fail(`${kernel} ${version}: the server did not start: ${(e as Error).message}`); return; }
    let r, code;
    try {
      r = await v9fs(s.sock, file, { kernel, version, aname: "/mnt/xenith", timeoutSec: 180 });
    } finally {
      code = await s.stop();
    }
    await t.test(`${kernel} ${version}`, async (t) => {
      t.equal(r.code, 0, `script exit status (stderr: ${r.stderr.slice(-2000)})`);
      const out = r.stdout;
      const id = marks(out).get("id");
      t.match(id, /^\d+$/, "spawn gave an id on the same open file");
      t.equal(section(out, "index"), `${id} pi idle vm ${dir}/vm`);
      t.equal(section(out, "events"), "prompt say hi\nagent_start\nstatus working\nturn_start 1\nturn_end 1\nagent_end\nstatus idle",
        "the background cat streamed the turn as it happened");
      t.equal(section(out, "text"), "Hi there!", "text lines carry the reply");
      t.equal(section(out, "body"), "> say hi\nHi there!");
      t.equal(section(out, "info"), `kind pi\nstatus idle\ncwd ${dir}/vm\nmodel faux/faux-1\npid ok\nsession ok`);
      t.equal(section(out, "tools"), "bash\nedit\nread\nwrite");
      t.equal(section(out, "refusals"), "bad model refused\nspawn outside the roots refused\nmissing folder refused");
      t.equal(section(out, "error events"), "error model: Model not found: nope/missing", "the refusal's words on the event stream");
      t.equal(section(out, "bash tool"), "tool_start bash\ntool_end bash ok made out.txt", "the tool call and its result as events");
      t.equal(readFileSync(path.join(dir, "vm", "out.txt"), "utf8"), "hi\n", "and its effect on disk");
      t.equal(section(out, "steer"), "prompt write a lot\nagent_start\nsteer say steered\nagent_end\n> say steered\nSteered reply.",
        "a steer during a paced reply joins the run and is answered before it ends (pi's steering)");
      t.equal(section(out, "abort"), "idle\n\"stopReason\":\"aborted\"", "abort stops the reply: pi records it as aborted");
      t.equal(section(out, "kill"), "exited\nexit 143");
      t.equal(code, 0, "the server stopped cleanly");
      t.same(processesIn(dir), [], "no pi left behind");
    });
  })));
});
