// Preloaded into the `pi9 serve` child of `npm run bench:agents`
// (node --expose-gc --import dist/bench/mem-probe.js …): a unix socket at
// $PI9_BENCH_PROBE; each connection gets, after two full garbage
// collections, one JSON line of the server's process.memoryUsage(). The
// socket does not keep the server alive, and the variable is removed from
// the environment so the server's children (pi) never see it.

import net from "node:net";

const sock = process.env.PI9_BENCH_PROBE;
delete process.env.PI9_BENCH_PROBE;
if (sock) {
  const gc = (globalThis as { gc?: () => void }).gc;
  const srv = net.createServer((c) => {
    if (gc) { gc(); gc(); }
    c.end(JSON.stringify({ gc: !!gc, ...process.memoryUsage() }) + "\n");
  });
  srv.listen(sock);
  srv.unref();
}
