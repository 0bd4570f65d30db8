// A small MCP server over stdio whose tool list grows: each call of `grow`
// adds a tool `grown-N`, says so with notifications/tools/list_changed, and
// then answers. Calling `grown-N` answers "grown N".

"use strict";

const readline = require("readline");

const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const answer = (id, result) => send({ jsonrpc: "2.0", id, result });
const text = (t) => ({ content: [{ type: "text", text: t }] });

let grown = 0;

function tools() {
  const list = [{ name: "grow", inputSchema: { type: "object" } }];
  for (let i = 1; i <= grown; i++) {
    list.push({ name: `grown-${i}`, inputSchema: { type: "object" } });
  }
  return list;
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    return;
  }
  if (message.id === undefined || message.method === undefined) return;
  const params = message.params || {};
  switch (message.method) {
    case "initialize":
      return answer(message.id, {
        protocolVersion: params.protocolVersion,
        capabilities: { tools: { listChanged: true } },
        serverInfo: { name: "growing", version: "1.0.0" },
      });
    case "tools/list":
      return answer(message.id, { tools: tools() });
    case "tools/call":
      if (params.name === "grow") {
        grown += 1;
        send({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
        return answer(message.id, text(`now ${grown} grown`));
      }
      if (/^grown-\d+$/.test(params.name) && Number(params.name.slice(6)) <= grown) {
        return answer(message.id, text(`grown ${params.name.slice(6)}`));
      }
      return answer(message.id, { ...text(`unknown tool ${params.name}`), isError: true });
    case "ping":
      return answer(message.id, {});
    default:
      return send({
        jsonrpc: "2.0",
        id: message.id,
        error: { code: -32601, message: "Method not found" },
      });
  }
});
