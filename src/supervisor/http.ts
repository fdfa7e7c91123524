/**
 * A supervisor's HTTP endpoint on 127.0.0.1 (or the host given): its peers fetch what it signed,
 * operators read its status.
 *
 *   GET /checkpoints/<recordCount>  → { checkpoints, signatures } or 404
 *   GET /status                     → the node's status
 */
import { createServer, type Server } from "node:http";

import type { SupervisorNode } from "./node.js";

export async function serveSupervisor(node: SupervisorNode, port: number, host = "127.0.0.1"): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? "/", "http://localhost");
    const checkpoint = /^\/checkpoints\/(\d{1,20})$/.exec(url.pathname);
    if (req.method === "GET" && checkpoint !== null) {
      const signed = node.signedFor(BigInt(checkpoint[1]));
      return signed === undefined ? send(404, { error: "not signed" }) : send(200, signed);
    }
    if (req.method === "GET" && url.pathname === "/status") return send(200, node.status());
    send(404, { error: "not found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
