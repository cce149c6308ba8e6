// The contract through openapi-typescript's types and its companion runtime, openapi-fetch: the
// types are generated from the served spec (`make client-typescript` writes them to
// build/clients/typescript/schema.d.ts, compiles this file with tsc and runs it with node against
// a live service), so every path, parameter, body and answer below is checked by the compiler.
// Every step asserts what the types promise: both list modes told apart by the `mode`
// discriminator, ETag/If-None-Match (304), If-Match and a stale one (412), an Idempotency-Key
// replay and its reuse (422), and a taken email (409), each error read as a typed Problem.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "../../build/clients/typescript/schema";
import {
  BASE,
  check,
  freshEmail,
  LIMIT,
  listBothWays,
  PASSWORD,
  PROBLEM,
  run,
  stepper,
  TASKS,
} from "../shared/scenario";

type Api = Client<paths>;
type Problem = components["schemas"]["Problem"];
type Task = components["schemas"]["Task"];

const step = stepper("openapi-fetch (openapi-typescript types)");
/** openapi-fetch labels every JSON body application/json; the spec takes edits as merge patches. */
const MERGE_PATCH = { "Content-Type": "application/merge-patch+json" };

/** The body of a call that must succeed with `status`. */
function answer<T>(result: { data?: T; response: Response }, status: number, what: string): T {
  const { data, response } = result;
  const got = response.status;
  check(got === status && data !== undefined, `${what}: ${status}, not ${got}`);
  return data;
}

/** Asserts a call failed with `status` and a Problem of `type` (a suffix of PROBLEM). */
function refused(
  result: { error?: Problem | string; response: Response },
  status: number,
  type: string,
): void {
  const { error, response } = result;
  check(response.status === status, `${status} (${type}), not ${response.status}`);
  check(typeof error === "object" && error.type === `${PROBLEM}${type}`, `a ${type} Problem`);
  check(error.status === status, "the Problem's status is the answer's");
}

async function signUp(): Promise<Api> {
  const anonymous = createClient<paths>({ baseUrl: BASE });
  const email = freshEmail("openapi-fetch");
  const body = { email, name: "Dorothy Vaughan", age: 48, password: PASSWORD };
  const user = answer(await anonymous.POST("/users", { body }), 201, "registration");
  check(user.email === email && user.role === "user", "the registered user");
  step(`registered ${user.email}`);
  refused(await anonymous.POST("/users", { body }), 409, "conflict");
  step("a taken email is a typed 409 Problem");
  const credentials = { email, password: PASSWORD };
  const tokens = answer(await anonymous.POST("/auth/token", { body: credentials }), 200, "login");
  const authorization = `${tokens.token_type} ${tokens.access_token}`;
  return createClient<paths>({ baseUrl: BASE, headers: { Authorization: authorization } });
}

async function createTasks(api: Api): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let n = 0; n < TASKS - 1; n++) {
    const body = { title: `Task ${n}` };
    ids.add(answer(await api.POST("/tasks", { body }), 201, "a created task").id);
  }
  const params = { header: { "Idempotency-Key": crypto.randomUUID() } };
  const body = { title: "Retried" };
  const first = answer(await api.POST("/tasks", { params, body }), 201, "a created task");
  const replay = answer(await api.POST("/tasks", { params, body }), 201, "the replay");
  check(replay.id === first.id, "the replay returns the same task");
  step("a retried create with the same Idempotency-Key replays the same task");
  const reused = await api.POST("/tasks", { params, body: { title: "Something else" } });
  refused(reused, 422, "idempotency-key-reused");
  step("the same key with another body is a typed 422 Problem");
  ids.add(first.id);
  return ids;
}

/** Both list modes through GET /tasks, each answer narrowed by its `mode`. */
function listEachWay(api: Api, created: ReadonlySet<string>): Promise<string[]> {
  const ids = (data: Task[]) => data.map((task) => task.id);
  const list = async (mode: { page: number } | { cursor: string }) => {
    const query = { ...mode, limit: LIMIT };
    return answer(await api.GET("/tasks", { params: { query } }), 200, "a list");
  };
  return listBothWays(
    created,
    async (page) => {
      const listed = await list({ page });
      check(listed.mode === "page", "a page");
      return { ids: ids(listed.data), next: listed.links.next, total: listed.meta.total };
    },
    async (cursor) => {
      const sliced = await list({ cursor });
      check(sliced.mode === "cursor", "a cursor slice");
      return { ids: ids(sliced.data), next: sliced.links.next };
    },
  );
}

async function editWithEtags(api: Api, taskId: string): Promise<void> {
  const path = { task_id: taskId };
  const read = await api.GET("/tasks/{task_id}", { params: { path } });
  answer(read, 200, "a read task");
  const etag = read.response.headers.get("ETag") ?? "";
  check(etag !== "", "an ETag");
  const unchanged = await api.GET("/tasks/{task_id}", {
    params: { path, header: { "If-None-Match": etag } },
  });
  check(unchanged.response.status === 304 && unchanged.data === undefined, "304 without a body");
  step("If-None-Match with the current ETag is a 304");
  const edit = (body: components["schemas"]["TaskUpdate"]) =>
    api.PATCH("/tasks/{task_id}", {
      params: { path, header: { "If-Match": etag } },
      headers: MERGE_PATCH,
      body,
    });
  const done = answer(await edit({ status: "done" }), 200, "the edited task");
  check(done.status === "done" && done.completed_at !== null, "done");
  const stale = await edit({ title: "Too late" });
  refused(stale, 412, "precondition-failed");
  step("edited with If-Match; a stale ETag is a typed 412 Problem");
}

run(async () => {
  const api = await signUp();
  const created = await createTasks(api);
  const byPage = await listEachWay(api, created);
  step(`listed ${created.size} tasks by page and by cursor, each once`);
  await editWithEtags(api, byPage[0] ?? "");
  step("scenario passed");
});
