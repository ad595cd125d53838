// Preloaded into the `pi9 serve` child of `npm run bench:agents`
// (node --expose-gc --import dist/bench/mem-probe.js …): a unix socket at
// $PI9_BENCH_PROBE; each connection gets, after two full garbage
// collections, one JSON line of the server's process.memoryUsage() and the
// bytes used in each V8 heap space (code_space is compiled code). The
// socket does not keep the server alive, and the variable is removed from
// the environment so the server's children (pi) never see it.

import net from "node:net";
import v8 from "node:v8";

const sock = process.env.PI9_BENCH_PROBE;
delete process.env.PI9_BENCH_PROBE;
if (sock) {
  const gc = (globalThis as { gc?: () => void }).gc;
  const srv = net.createServer((c) => {
    if (gc) { gc(); gc(); }
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((sp) => [sp.space_name, sp.space_used_size]));
    c.end(JSON.stringify({ gc: !!gc, ...process.memoryUsage(), spaces }) + "\n");
  });
  srv.listen(sock);
  srv.unref();
}
