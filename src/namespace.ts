// The whole pi9 namespace: one tree for every dialect and every client.
//   /mnt/xenith  /mnt/tools  /mnt/pxldisk  /n/web

import { Agents, AgentOptions } from "./agents/manager.js";
import { StaticDir } from "./fs/node.js";
import { Xenith } from "./xenith/xenith.js";

export interface Namespace {
  root: StaticDir;
  xenith: Xenith;
  tools: StaticDir;
  pxldisk: StaticDir;
  web: StaticDir;
  agents: Agents;
}

export function buildNamespace(opts: { cwd?: string; agents?: AgentOptions } = {}): Namespace {
  const root = new StaticDir("", 0o555);
  const mnt = root.add(new StaticDir("mnt", 0o555));
  const n = root.add(new StaticDir("n", 0o555));
  const xenith = new Xenith(opts.cwd ?? "");
  mnt.add(xenith.dir);
  const tools = mnt.add(new StaticDir("tools", 0o555));
  const pxldisk = mnt.add(new StaticDir("pxldisk", 0o555));
  const web = n.add(new StaticDir("web", 0o555));
  const agents = new Agents(xenith, opts.agents);
  return { root, xenith, tools, pxldisk, web, agents };
}
