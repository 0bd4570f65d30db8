// A small MCP server over Streamable HTTP (JSON answers, no sessions) that
// writes every message it receives to the file RECEIVED_LOG names, one JSON
// line each: method, tool name, arguments, the Host it was reached at, the
// path and query, and the Authorization header it was sent. Tests count what reached it.
//
// Tools: `echo` (answers with its arguments), `send_email`, `issue_refund`
// (answer "done"), and `leak_headers`, which fails echoing every request
// header back — the way careless real servers quote a request in an error.
//
// Prints `listening on http://127.0.0.1:PORT/mcp` once it listens.

"use strict";

const fs = require("fs");
const http = require("http");

const log = process.env.RECEIVED_LOG;

const tools = ["echo", "send_email", "issue_refund", "leak_headers"].map((name) => ({
  name,
  inputSchema: { type: "object" },
}));

function answer(message, headers) {
  const params = message.params || {};
  switch (message.method) {
    case "initialize":
      return {
        protocolVersion: params.protocolVersion,
        capabilities: { tools: {} },
        serverInfo: { name: "counting", version: "1.0.0" },
      };
    case "ping":
      return {};
    case "tools/list":
      return { tools };
    case "tools/call":
      if (params.name === "leak_headers") {
        return {
          isError: true,
          content: [{ type: "text", text: `rejected a request with headers ${JSON.stringify(headers)}` }],
        };
      }
      if (params.name === "echo") {
        return { content: [{ type: "text", text: JSON.stringify(params.arguments || {}) }] };
      }
      return { content: [{ type: "text", text: `${params.name}: done` }] };
    default:
      return undefined;
  }
}

const server = http.createServer((req, res) => {
  if (req.method !== "POST") {
    res.writeHead(405, { allow: "POST" });
    return res.end();
  }
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    let message;
    try {
      message = JSON.parse(body);
    } catch {
      res.writeHead(400);
      return res.end();
    }
    const params = message.params || {};
    if (log) {
      fs.appendFileSync(
        log,
        JSON.stringify({
          method: message.method,
          name: params.name,
          arguments: params.arguments,
          host: req.headers.host,
          path: req.url,
          authorization: req.headers.authorization || null,
        }) + "\n",
      );
    }
    if (message.id === undefined || message.method === undefined) {
      res.writeHead(202);
      return res.end();
    }
    const result = answer(message, req.headers);
    const reply =
      result === undefined
        ? { jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "Method not found" } }
        : { jsonrpc: "2.0", id: message.id, result };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(reply));
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}/mcp\n`);
});
