import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { FastifyReply, FastifyRequest } from "fastify";
import { KappaError } from "../../errors.js";
import { HttpError } from "./errors.js";

/** The cookie a browser gets after opening the status page with `?token=`, so its EventSource can authenticate. */
export const TOKEN_COOKIE = "kappa_token";

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (h.startsWith("::ffff:")) return isLoopback(h.slice(7));
  return isIP(h) === 4 && h.startsWith("127.");
}

/** Refuses to expose the views beyond this machine without a token: anyone who reaches the port could read every view. */
export function assertSafeBind(host: string, token: string | undefined): void {
  if (token !== undefined && token.trim() === "") {
    throw new KappaError("TOKEN_REQUIRED", "the HTTP token is empty", { hint: "pass --token <secret> with a long random value (e.g. `openssl rand -hex 24`)" });
  }
  if (!isLoopback(host) && !token) {
    throw new KappaError("TOKEN_REQUIRED", `refusing to serve on ${host} without a token: anyone who can reach that address could read every view`, {
      hint: "pass --token <secret> (clients then send `Authorization: Bearer <secret>`), or bind 127.0.0.1",
    });
  }
}

/** The host name of a Host header (`127.0.0.1:7070`, `[::1]:7070`, `localhost`). */
function hostName(header: string): string {
  const h = header.trim();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]"));
  const colon = h.lastIndexOf(":");
  return colon > 0 && h.indexOf(":") === colon ? h.slice(0, colon) : h;
}

/**
 * For a loopback bind: refuses requests whose Host header names another machine. Without this, a web page
 * could point its own domain at 127.0.0.1 (DNS rebinding) and read the views through the visitor's browser.
 */
export function loopbackHostCheck(): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const host = req.headers.host;
    if (host && isLoopback(hostName(host))) return;
    throw new HttpError(403, "FORBIDDEN_HOST", `requests to this server must name a loopback host, not ${JSON.stringify(host ?? "")}`, {
      hint: "use http://127.0.0.1:<port> or http://localhost:<port>; to serve other machines, bind --host 0.0.0.0 with --token",
    });
  };
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Compares in constant time (hashing first so lengths do not leak). */
function sameToken(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

function cookieToken(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k !== TOKEN_COOKIE) continue;
    try {
      return decodeURIComponent(v.join("="));
    } catch {
      return ""; // malformed percent-encoding: a wrong token (401), not a server error
    }
  }
  return undefined;
}

/**
 * An onRequest hook that lets a request through only with `Authorization: Bearer <token>`.
 * Browsers cannot set that header on a page load or an EventSource, so `GET /?token=<token>` is also
 * accepted once and answered with an HttpOnly, SameSite=Strict cookie (Secure over HTTPS) that authenticates what the page loads.
 */
export function bearerAuth(token: string, opts: { secure?: boolean } = {}): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = digest(token);
  return async (req, reply) => {
    const auth = req.headers.authorization;
    const m = auth ? /^Bearer\s+(.+)$/i.exec(auth.trim()) : null;
    if (m && sameToken(m[1]!, expected)) return;
    const cookie = cookieToken(req);
    if (cookie !== undefined && sameToken(cookie, expected)) return;
    const q = (req.query as Record<string, unknown> | undefined)?.token;
    if (req.method === "GET" && req.routeOptions.url === "/" && typeof q === "string" && sameToken(q, expected)) {
      // Over HTTPS the cookie is Secure, so a browser never sends the token in cleartext.
      reply.header("set-cookie", `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/${opts.secure ? "; Secure" : ""}`);
      return;
    }
    reply.header("www-authenticate", 'Bearer realm="kappa"');
    throw new HttpError(401, "UNAUTHORIZED", auth || cookie !== undefined ? "the bearer token is wrong" : "this server needs a bearer token", {
      hint: "send `Authorization: Bearer <token>` (the --token given to `kappa serve`); in a browser open /?token=<token> once",
    });
  };
}

/**
 * A preHandler for routes that write: only `Authorization: Bearer <token>` lets a request through — never
 * the status page's cookie or `?token=`, so a page a browser visits cannot post events with the cookie.
 */
export function bearerHeaderOnly(token: string): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = digest(token);
  return async (req, reply) => {
    const auth = req.headers.authorization;
    const m = auth ? /^Bearer\s+(.+)$/i.exec(auth.trim()) : null;
    if (m && sameToken(m[1]!, expected)) return;
    reply.header("www-authenticate", 'Bearer realm="kappa"');
    throw new HttpError(401, "UNAUTHORIZED", auth ? "the bearer token is wrong" : "writes need `Authorization: Bearer <token>`", {
      hint: "send the --token given to `kappa serve --allow-append` as `Authorization: Bearer <token>` (cookies do not authorize writes)",
    });
  };
}
