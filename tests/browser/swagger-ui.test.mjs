// The published docs in a real browser: headless Chromium (Debian's package, driven by
// playwright-core) opens Swagger UI as the service serves it at /v1/ui, finds every operation of
// the spec listed, runs "Try it out" on POST /users, and keeps a screenshot in test-results/.
// Every request the page makes must go to the service itself: the UI needs no outside network.
//
//   TASKAPI_URL=http://127.0.0.1:8000/v1 node --test tests/browser/   (`make docs-test` does it all)
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const BASE = process.env.TASKAPI_URL;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const RESULTS = "test-results";
const METHODS = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];

let context;
let page;
let profile;
const outside = [];
const refusedByPolicy = [];

before(async () => {
  assert.ok(BASE, "TASKAPI_URL must name the live service, such as http://127.0.0.1:8000/v1");
  mkdirSync(RESULTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), "taskapi-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
  // Anything not addressed to the service is recorded and refused, so the test proves the UI
  // works offline rather than merely hoping it does.
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    outside.push(url.href);
    return route.abort();
  });
  page = await context.newPage();
  // The page's own CSP (only its assets and its inline code): anything it refused shows here.
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) refusedByPolicy.push(message.text());
  });
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("Swagger UI lists every operation of the spec", async () => {
  const spec = await (await fetch(`${BASE}/openapi.json`)).json();
  const expected = Object.entries(spec.paths).flatMap(([path, item]) =>
    METHODS.filter((method) => method in item).map((method) => `${method.toUpperCase()} ${path}`),
  );
  await page.goto(`${BASE}/ui/`);
  await page.locator(".opblock").first().waitFor();
  const listed = await page.locator(".opblock").evaluateAll((blocks) =>
    blocks.map((block) => {
      const method = block.querySelector(".opblock-summary-method").textContent.trim();
      const path = block.querySelector(".opblock-summary-path").getAttribute("data-path");
      return `${method} ${path}`;
    }),
  );
  assert.deepEqual([...listed].sort(), [...expected].sort());
});

test("Try it out registers a user through POST /users", async () => {
  // The spec's server is `{scheme}://{host}:{port}/v1` with `make run`'s defaults; point its
  // variables at the service under test, as a user of another deployment would.
  const service = new URL(BASE);
  await page.locator('input[data-variable="host"]').fill(service.hostname);
  await page.locator('input[data-variable="port"]').fill(service.port);
  const operation = page.locator(".opblock-post", {
    has: page.locator('.opblock-summary-path[data-path="/users"]'),
  });
  await operation.locator(".opblock-summary").click();
  await operation.getByRole("button", { name: "Try it out" }).click();
  // The body is pre-filled from the spec's example; a unique email keeps reruns independent.
  const body = operation.locator("textarea.body-param__text");
  const example = JSON.parse(await body.inputValue());
  await body.fill(JSON.stringify({ ...example, email: `ui-${Date.now()}@example.com` }, null, 2));
  await operation.getByRole("button", { name: "Execute" }).click();
  const status = operation.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor();
  assert.equal((await status.textContent()).trim(), "201");
  await operation.screenshot({ path: join(RESULTS, "swagger-ui-try-it-out.png") });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(RESULTS, "swagger-ui.png") });
});

test("the UI needed nothing from outside the service", () => {
  assert.deepEqual(outside, []);
});

test("the UI ran under its Content-Security-Policy without a refusal", () => {
  assert.deepEqual(refusedByPolicy, []);
});
