// The contract through openapi-generator's `typescript-fetch` client, generated from the served
// spec (`make client-openapi-generator` generates it into build/, compiles this file with tsc and
// runs it with node against a live service). Every step asserts what the types promise: both list
// modes decoded through the `mode` discriminator, ETag/If-None-Match (304), If-Match and a stale
// one (412), an Idempotency-Key replay and its reuse (422), and a taken email (409), each error
// read as a typed Problem.
import {
  AuthApi,
  Configuration,
  type Problem,
  ProblemFromJSON,
  ResponseError,
  type Task,
  TasksApi,
  TaskStatus,
  UsersApi,
} from "../../../build/clients/openapi-generator/typescript/index";
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
} from "../../shared/scenario";

const step = stepper("openapi-generator typescript-fetch");

/** The error a call must fail with, as its status and typed problem (undefined for no body). */
async function failure(call: Promise<unknown>): Promise<{ status: number; problem?: Problem }> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof ResponseError)) throw error;
    const { status } = error.response;
    const text = await error.response.text();
    return text ? { status, problem: ProblemFromJSON(JSON.parse(text)) } : { status };
  }
  throw new Error("the call succeeded but should have failed");
}

async function signUp(): Promise<Configuration> {
  const users = new UsersApi(new Configuration({ basePath: BASE }));
  const email = freshEmail("og-ts");
  const account = { email, name: "Katherine Johnson", age: 50, password: PASSWORD };
  const user = await users.createUser({ userCreate: account });
  step(`registered ${user.email}`);
  const taken = await failure(users.createUser({ userCreate: account }));
  check(taken.status === 409 && taken.problem?.type === `${PROBLEM}conflict`, "409 conflict");
  step("a taken email is a typed 409 Problem");
  const auth = new AuthApi(new Configuration({ basePath: BASE }));
  const tokens = await auth.createToken({ credentials: { email, password: PASSWORD } });
  return new Configuration({ basePath: BASE, accessToken: tokens.accessToken });
}

async function createTasks(tasks: TasksApi): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let n = 0; n < TASKS - 1; n++) {
    ids.add((await tasks.createTask({ taskCreate: { title: `Task ${n}` } })).id);
  }
  const idempotencyKey = crypto.randomUUID();
  const first = await tasks.createTask({ taskCreate: { title: "Retried" }, idempotencyKey });
  const replay = await tasks.createTask({ taskCreate: { title: "Retried" }, idempotencyKey });
  check(replay.id === first.id, "the replay returns the same task");
  step("a retried create with the same Idempotency-Key replays the same task");
  const reused = await failure(
    tasks.createTask({ taskCreate: { title: "Something else" }, idempotencyKey }),
  );
  check(reused.status === 422, "422");
  check(reused.problem?.type === `${PROBLEM}idempotency-key-reused`, "idempotency problem");
  step("the same key with another body is a typed 422 Problem");
  ids.add(first.id);
  return ids;
}

/** Both list modes through listTasks, each answer narrowed by its `mode`. */
function listEachWay(tasks: TasksApi, created: ReadonlySet<string>): Promise<string[]> {
  const ids = (data: Task[]) => data.map((task) => task.id);
  return listBothWays(
    created,
    async (page) => {
      const listed = await tasks.listTasks({ page, limit: LIMIT });
      check(listed.mode === "page", "a page");
      return { ids: ids(listed.data), next: listed.links.next, total: listed.meta.total };
    },
    async (cursor) => {
      const sliced = await tasks.listTasks({ cursor, limit: LIMIT });
      check(sliced.mode === "cursor", "a cursor slice");
      return { ids: ids(sliced.data), next: sliced.links.next };
    },
  );
}

async function editWithEtags(tasks: TasksApi, taskId: string): Promise<void> {
  const read = await tasks.getTaskRaw({ taskId });
  const etag = read.raw.headers.get("ETag") ?? "";
  check(etag !== "", "an ETag");
  // The generated client throws for every status outside 2xx, 304 included.
  const unchanged = await failure(tasks.getTask({ taskId, ifNoneMatch: etag }));
  check(unchanged.status === 304 && unchanged.problem === undefined, "304 without a body");
  step("If-None-Match with the current ETag is a 304");
  const done = await tasks.updateTask({ taskId, taskUpdate: { status: TaskStatus.Done }, ifMatch: etag });
  check(done.status === TaskStatus.Done && done.completedAt !== null, "done");
  const stale = await failure(
    tasks.updateTask({ taskId, taskUpdate: { title: "Too late" }, ifMatch: etag }),
  );
  check(stale.status === 412, "412");
  check(stale.problem?.type === `${PROBLEM}precondition-failed`, "precondition problem");
  step("edited with If-Match; a stale ETag is a typed 412 Problem");
}

run(async () => {
  const tasks = new TasksApi(await signUp());
  const created = await createTasks(tasks);
  const byPage = await listEachWay(tasks, created);
  step(`listed ${created.size} tasks by page and by cursor, each once`);
  await editWithEtags(tasks, byPage[0] ?? "");
  step("scenario passed");
});
