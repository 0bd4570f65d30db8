// A small MCP server over stdio that needs a credential: it reads API_TOKEN
// from its environment, writes what it received to the file RECEIVED names
// (so a test can see the credential arrived), and its `whoami` tool echoes
// the token back — the way careless real servers echo request headers in
// their errors.

"use strict";

const fs = require("fs");
const readline = require("readline");

const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const answer = (id, result) => send({ jsonrpc: "2.0", id, result });
const token = process.env.API_TOKEN || "";
if (process.env.RECEIVED) fs.writeFileSync(process.env.RECEIVED, token);

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
        capabilities: { tools: {} },
        serverInfo: { name: "credentialed", version: "1.0.0" },
      });
    case "tools/list":
      return answer(message.id, {
        tools: [{ name: "whoami", inputSchema: { type: "object" } }],
      });
    case "tools/call":
      return answer(message.id, {
        content: [{ type: "text", text: `authenticated with ${token} (base64 ${Buffer.from(token).toString("base64")})` }],
      });
    case "ping":
      return answer(message.id, {});
    default:
      return send({ jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "Method not found" } });
  }
});
