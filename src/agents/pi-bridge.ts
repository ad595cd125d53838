// A pi extension that pi9 loads into every pi it spawns (`pi -e <this file>`).
//
// pi's RPC mode has no command that lists the agent's tools, but an
// extension can ask pi itself (pi.getAllTools, pi.getActiveTools). This one
// registers the command `/pi9-tools <nonce>`; pi runs extension commands at
// once, even mid-turn, and the answer comes back on pi's stdout as a
// fire-and-forget `extension_ui_request` notify:
//
//   pi9-tools <nonce> [{"name":"read","description":"…"}, …]
//
// It must stay free of runtime imports: pi loads it with its own module
// loader, from pi9's compiled dist/ folder.

import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

export const TOOLS_COMMAND = "pi9-tools";

export default function pi9Bridge(pi: ExtensionAPI) {
  pi.registerCommand(TOOLS_COMMAND, {
    description: "pi9: report the active tools (read by pi9 for the window's tools file)",
    handler: async (args, ctx) => {
      const active = new Set(pi.getActiveTools());
      const tools = pi.getAllTools()
        .filter((t) => active.has(t.name))
        .map((t) => ({ name: t.name, description: t.description ?? "" }));
      ctx.ui.notify(`${TOOLS_COMMAND} ${args.trim()} ${JSON.stringify(tools)}`, "info");
    },
  });
}
