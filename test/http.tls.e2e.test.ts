import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer } from "../src/log/index.js";
import { ServeProcess, httpsRequest } from "./support/serve.js";

const TOKEN = "s3cret-token-for-tls";

describe("kappa serve over HTTPS", () => {
  it("serves HTTPS with --tls-cert/--tls-key, sets a Secure cookie, and answers a malformed cookie with 401", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kappa-tls-"));
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    try {
      // A self-signed certificate for 127.0.0.1, made here.
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], { stdio: "ignore" });
      const ca = readFileSync(cert);
      await using nats = await NatsServer.start();
      await using serve = await ServeProcess.start(["--nats", nats.url, "--data-dir", join(dir, "data")], ["--token", TOKEN, "--tls-cert", cert, "--tls-key", key]);
      expect(serve.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

      const authed = await httpsRequest(`${serve.url}/healthz`, { ca, headers: { authorization: `Bearer ${TOKEN}` } });
      expect(authed.status).toBe(200);
      expect(JSON.parse(authed.body).nats.reachable).toBe(true);

      const page = await httpsRequest(`${serve.url}/?token=${TOKEN}`, { ca });
      expect(page.status).toBe(200);
      const cookie = String(page.headers["set-cookie"]);
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/; Secure/);
      expect((await httpsRequest(`${serve.url}/views`, { ca, headers: { cookie: cookie.split(";")[0]! } })).status).toBe(200);

      for (const bad of ["kappa_token=%E0%A4%A", "kappa_token=%", "kappa_token"]) {
        const r = await httpsRequest(`${serve.url}/views`, { ca, headers: { cookie: bad } });
        expect(r.status, bad).toBe(401);
        expect(JSON.parse(r.body).error).toBe("UNAUTHORIZED");
      }
      // Plain HTTP on the HTTPS port gets no answer from the API.
      const plain = await fetch(serve.url.replace("https:", "http:") + "/healthz", { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.status, () => "refused");
      expect(plain).not.toBe(200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
