// Directory confinement (src/lib/confine.ts) and its users: a symbolic link
// inside an allowed folder cannot lead a spawn, a `mkdir` spawn or the
// registry out of it, and nothing is created outside.

import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import t from "tap";
import { Agents } from "../src/agents/manager.js";
import { realInside, realPrefix, within } from "../src/lib/confine.js";
import { Xenith } from "../src/xenith/xenith.js";

const base = mkdtempSync(path.join(os.tmpdir(), "pi9-confine-"));
t.teardown(() => rmSync(base, { recursive: true, force: true }));
const root = path.join(base, "root"), outside = path.join(base, "outside");
mkdirSync(path.join(root, "proj"), { recursive: true });
mkdirSync(outside);
symlinkSync(outside, path.join(root, "out"));

t.test("within is by whole names", async (t) => {
  t.ok(within("/a/b", "/a"));
  t.ok(within("/a", "/a"));
  t.notOk(within("/ab", "/a"), "a sibling with the same prefix is outside");
  t.ok(within("/a/b", "/a/"));
});

t.test("realInside follows links, also for paths that do not exist yet", async (t) => {
  t.equal(await realInside(path.join(root, "proj"), [root]), path.join(await realPrefix(root), "proj"));
  t.equal(await realInside(path.join(root, "out"), [root]), null, "a link out is outside");
  t.equal(await realInside(path.join(root, "out", "new", "deeper"), [root]), null, "so is a folder to be made through it");
  t.ok(await realInside(path.join(root, "new", "deeper"), [root]), "a folder to be made inside is inside");
  t.equal(await realInside(path.join(root, "..", "outside"), [root]), null);
});

t.test("a mkdir spawn through a link creates nothing outside", async (t) => {
  const agents = new Agents(new Xenith(""), { roots: [root] });
  await t.rejects(agents.resolveDir(path.join(root, "out", "made"), true), { code: "EACCES", message: /resolves outside/ });
  t.notOk(existsSync(path.join(outside, "made")), "nothing was made outside the root");
  await t.rejects(agents.resolveDir(path.join(root, "out"), false), { code: "EACCES" });
  t.equal(await agents.resolveDir(path.join(root, "fresh"), true), path.join(await realPrefix(root), "fresh"), "inside, mkdir works");
  t.ok(existsSync(path.join(root, "fresh")));
});
