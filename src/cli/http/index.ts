/** The HTTP query server: query API with read-your-writes, change streams, metrics, health and a status page. */
export { startHttpServer, type HttpServer, type HttpServerOptions } from "./server.js";
export { isLoopback, assertSafeBind } from "./auth.js";
export type { ViewsSnapshot, ProcessorView, VersionView } from "./snapshot.js";
