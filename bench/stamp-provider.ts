// A network-free model for `npm run bench:agents` (bench/agents.ts): a pi
// extension (load it with `pi -e <this file>`, run pi with --offline and
// --model stamp/stamp-1) that answers a prompt `stamp n=<N> ms=<I>` with one
// text block streamed as N deltas, one every I ms. Each delta is
//
//   "<k>@<t> "
//
// where k counts from 0 and t is the moment the delta is handed to pi (just
// before the push into pi's event stream): CLOCK_MONOTONIC in ms with
// fractions (process.hrtime), the clock every process on the machine shares,
// so a reader elsewhere on the machine can subtract its own process.hrtime.
// Any other prompt gets "ok". Nothing is sent anywhere.

import { createAssistantMessageEventStream } from "@mariozechner/pi-ai";

const API = "pi9-bench-stamp";
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function lastUserText(messages: any[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) return m.content.filter((b: any) => b?.type === "text").map((b: any) => b.text).join("\n");
    return "";
  }
  return "";
}

export default function stampProvider(pi: any) {
  const streamSimple = (model: any, context: any, options: any) => {
    const stream = createAssistantMessageEventStream();
    const m = /^stamp n=(\d+) ms=(\d+(?:\.\d+)?)$/.exec(lastUserText(context.messages ?? []).trim());
    const n = m ? Number(m[1]) : 0;
    const ms = m ? Number(m[2]) : 0;
    const message: any = {
      role: "assistant", content: [], api: model.api ?? API, provider: "stamp", model: model.id,
      usage: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0, cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 } },
      stopReason: "stop", timestamp: Date.now(),
    };
    const signal: AbortSignal | undefined = options?.signal;
    const partial = () => ({ ...message, content: message.content.map((c: any) => ({ ...c })) });
    const aborted = () => {
      const e = { ...partial(), stopReason: "aborted", errorMessage: "Request was aborted" };
      stream.push({ type: "error", reason: "aborted", error: e });
      stream.end(e);
    };
    void (async () => {
      stream.push({ type: "start", partial: partial() });
      message.content.push({ type: "text", text: "" });
      stream.push({ type: "text_start", contentIndex: 0, partial: partial() });
      if (!m) {
        message.content[0].text = "ok";
        stream.push({ type: "text_delta", contentIndex: 0, delta: "ok", partial: partial() });
      }
      for (let k = 0; k < n; k++) {
        await new Promise((r) => setTimeout(r, ms));
        if (signal?.aborted) return aborted();
        const delta = `${k}@${nowMs().toFixed(3)} `;
        message.content[0].text += delta;
        stream.push({ type: "text_delta", contentIndex: 0, delta, partial: partial() });
      }
      stream.push({ type: "text_end", contentIndex: 0, content: message.content[0].text, partial: partial() });
      stream.push({ type: "done", reason: "stop", message: partial() });
      stream.end(partial());
    })();
    return stream;
  };
  pi.registerProvider("stamp", {
    name: "Stamp (pi9 bench)",
    api: API,
    baseUrl: "http://127.0.0.1:0",
    apiKey: "stamp", // a literal: nothing is ever sent anywhere
    streamSimple,
    models: [{
      id: "stamp-1", name: "stamp-1", reasoning: false, input: ["text"], contextWindow: 128000, maxTokens: 16384,
      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
    }],
  });
}
