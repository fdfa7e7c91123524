/** Free TCP ports on 127.0.0.1, for the servers the scripts and tests start. */
import { createServer } from "node:net";

/** A free TCP port on 127.0.0.1 (the OS picks it; it is free when this resolves). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
