// A small MCP server over stdio whose behaviour the wire tests script, and
// which appends every line it receives to the file named by $RECORD so the
// tests can see exactly what Sandbar sent.
//
// Tools: `burst` answers after fifty progress notifications (when asked for
// progress) and log messages, all in one write; `hang` never answers;
// `ask-later` answers at once and then asks for sampling while nothing is in
// flight; `junk` writes a JSON line that is not JSON-RPC before answering.
// `tools/list` comes in three pages; `resources/list` repeats its cursor
// forever; `prompts/list` is declared but answered with method-not-found.

"use strict";

const fs = require("fs");
const readline = require("readline");

const record = process.env.RECORD;
const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const answer = (id, result) => send({ jsonrpc: "2.0", id, result });

const pages = {
  undefined: { tools: [tool("a")], nextCursor: "p2" },
  p2: { tools: [tool("b")], nextCursor: "p3" },
  p3: { tools: [tool("c"), tool("burst"), tool("hang")] },
};

function tool(name) {
  return { name, inputSchema: { type: "object" } };
}

function onRequest(message) {
  const params = message.params || {};
  switch (message.method) {
    case "initialize":
      return answer(message.id, {
        protocolVersion: params.protocolVersion,
        capabilities: { tools: {}, resources: {}, prompts: {}, logging: {} },
        serverInfo: { name: "scripted", version: "1.0.0" },
      });
    case "tools/list":
      return answer(message.id, pages[params.cursor]);
    case "resources/list":
      return answer(message.id, {
        resources: [{ uri: "demo://again", name: "again" }],
        nextCursor: "again",
      });
    case "resources/templates/list":
      return answer(message.id, { resourceTemplates: [] });
    case "prompts/list":
      return send({
        jsonrpc: "2.0",
        id: message.id,
        error: { code: -32601, message: "Method not found" },
      });
    case "tools/call":
      return onToolCall(message, params);
    default:
      return send({
        jsonrpc: "2.0",
        id: message.id,
        error: { code: -32601, message: "Method not found" },
      });
  }
}

function onToolCall(message, params) {
  const token = params._meta && params._meta.progressToken;
  switch (params.name) {
    case "burst": {
      let out = "";
      for (let i = 1; i <= 50; i++) {
        if (token !== undefined) {
          out += JSON.stringify({
            jsonrpc: "2.0",
            method: "notifications/progress",
            params: { progressToken: token, progress: i, total: 50 },
          }) + "\n";
        }
        if (i % 10 === 0) {
          out += JSON.stringify({
            jsonrpc: "2.0",
            method: "notifications/message",
            params: { level: "info", data: `step ${i}` },
          }) + "\n";
        }
      }
      out += JSON.stringify({
        jsonrpc: "2.0",
        id: message.id,
        result: { content: [{ type: "text", text: "burst done" }] },
      }) + "\n";
      process.stdout.write(out);
      return;
    }
    case "hang":
      return;
    case "ask-later":
      answer(message.id, { content: [{ type: "text", text: "asked" }] });
      setTimeout(() => {
        send({
          jsonrpc: "2.0",
          id: "late",
          method: "sampling/createMessage",
          params: { messages: [], maxTokens: 1 },
        });
      }, 200);
      return;
    case "junk":
      process.stdout.write('{"hello": "not json-rpc"}\n');
      answer(message.id, { content: [{ type: "text", text: "after junk" }] });
      return;
    default:
      answer(message.id, {
        content: [{ type: "text", text: `no tool ${params.name}` }],
        isError: true,
      });
  }
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  fs.appendFileSync(record, line + "\n");
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    return;
  }
  if (message.method !== undefined && message.id !== undefined) {
    onRequest(message);
  }
});
