// nats.js transport-node 3.4 can write to a socket the server has already ended (flushing pending
// protocol while a killed server's connection closes). Node then emits "write after end" on a socket
// whose listeners the transport has just removed, which crashes the process. A worker must survive a
// NATS restart, so sends to an ended socket are dropped here: the client reconnects and resends anyway.
import { createRequire } from "node:module";

interface TransportProto {
  _send(frame: Uint8Array): Promise<void>;
  socket?: { writableEnded?: boolean; destroyed?: boolean };
  __kappaPatched?: boolean;
}

const require = createRequire(import.meta.url);
const { NodeTransport } = require("@nats-io/transport-node/lib/node_transport.js") as { NodeTransport: { prototype: TransportProto } };
const proto = NodeTransport.prototype;
if (!proto.__kappaPatched) {
  const original = proto._send;
  proto._send = function (this: TransportProto, frame: Uint8Array): Promise<void> {
    if (this.socket?.writableEnded || this.socket?.destroyed) return Promise.resolve();
    return original.call(this, frame);
  };
  proto.__kappaPatched = true;
}
