// A client's first walk, against Prism's mock of spec/openapi.yaml alone (no service): what a
// reviewer or a front-end developer gets from `make mock` before any code exists. Register, log
// in, create a task, list by page and by cursor, change it with If-Match, meet a stale If-Match,
// delete it. Each answer must carry the spec's examples (Location, ETag, Link, both list modes).
//
//   node --test tests/mock/   (`make mock-test`; it starts and stops Prism itself)
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { after, before, test } from "node:test";

const PRISM = "node_modules/.bin/prism";
const START_TIMEOUT_MS = 60_000;
let prism;
let base;
const state = {};

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(url) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (prism.exitCode !== null) throw new Error(`prism exited with ${prism.exitCode}`);
    try {
      await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
  throw new Error(`prism gave no answer in ${START_TIMEOUT_MS} ms`);
}

// Prism matches paths without the server's base path, so the mock answers at its root.
async function call(method, path, { body, headers = {}, contentType = "application/json" } = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(state.token ? { Authorization: `Bearer ${state.token}` } : {}),
      ...(body === undefined ? {} : { "Content-Type": contentType }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  prism = spawn(PRISM, ["mock", "spec/openapi.yaml", "--host", "127.0.0.1", "--port", `${port}`], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitUntilUp(base);
});

after(() => {
  prism?.kill();
});

test("register answers 201 with the user and its Location", async () => {
  const registered = await call("POST", "/users", {
    body: { email: "mock@example.com", name: "Mock User", age: 30, password: "mock flow passphrase" },
  });
  assert.equal(registered.status, 201);
  assert.match(registered.headers.get("location"), /^\/v1\/users\/[0-9a-f-]+$/);
  assert.equal(registered.body.role, "user");
});

test("logging in gives a token pair", async () => {
  const tokens = await call("POST", "/auth/token", {
    body: { email: "mock@example.com", password: "mock flow passphrase" },
  });
  assert.equal(tokens.status, 200);
  assert.equal(tokens.body.token_type, "Bearer");
  state.token = tokens.body.access_token;
});

test("creating a task answers 201 with Location and ETag", async () => {
  const created = await call("POST", "/tasks", {
    body: { title: "Mocked task", priority: "high" },
    headers: { "Idempotency-Key": "mock-create-1" },
  });
  assert.equal(created.status, 201);
  assert.match(created.headers.get("location"), /^\/v1\/tasks\/[0-9a-f-]+$/);
  assert.match(created.headers.get("etag"), /^"[0-9]+"$/);
  state.task = created.body.id;
  state.etag = created.headers.get("etag");
});

test("listing by page gives a page with its Link header", async () => {
  const listed = await call("GET", "/tasks?page=1&limit=20");
  assert.equal(listed.status, 200);
  assert.equal(listed.body.mode, "page");
  assert.equal(typeof listed.body.meta.total, "number");
  assert.match(listed.headers.get("link"), /<\/v1\/tasks\?[^>]+>; rel="first"/);
});

test("listing by cursor gives a slice (the cursor-slice example)", async () => {
  const sliced = await call("GET", "/tasks?cursor=&limit=1", {
    headers: { Prefer: "example=cursor-slice" },
  });
  assert.equal(sliced.status, 200);
  assert.equal(sliced.body.mode, "cursor");
  assert.deepEqual(Object.keys(sliced.body.meta), ["limit"]);
  assert.match(sliced.body.links.next, /cursor=[A-Za-z0-9_.-]+/);
});

test("changing the task with If-Match answers the task and a new ETag", async () => {
  const changed = await call("PATCH", `/tasks/${state.task}`, {
    body: { status: "done" },
    contentType: "application/merge-patch+json",
    headers: { "If-Match": state.etag },
  });
  assert.equal(changed.status, 200);
  assert.match(changed.headers.get("etag"), /^"[0-9]+"$/);
});

test("a stale If-Match is the 412 precondition-failed problem", async () => {
  const stale = await call("PATCH", `/tasks/${state.task}`, {
    body: { title: "Too late" },
    contentType: "application/merge-patch+json",
    headers: { "If-Match": '"1"', Prefer: "code=412" },
  });
  assert.equal(stale.status, 412);
  assert.equal(stale.body.type, "tag:taskapi.dev,2026:problem/precondition-failed");
});

test("deleting the task answers 204", async () => {
  const deleted = await call("DELETE", `/tasks/${state.task}`, { headers: { "If-Match": state.etag } });
  assert.equal(deleted.status, 204);
});

test("a body that breaks the contract is refused, not answered with a success", async () => {
  const refused = await call("POST", "/tasks", { body: { title: "" } });
  assert.ok([400, 422].includes(refused.status), `got ${refused.status}`);
});
