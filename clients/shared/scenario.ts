// What the TypeScript client scenarios share: the live service's address, the scenario's sizes,
// its assertions, the walk through both list modes, and how it ends (within a deadline). Each scenario (clients/typescript/, for openapi-fetch over
// openapi-typescript's types, and clients/openapi-generator/typescript/, for typescript-fetch)
// walks the same flow through its own client.

declare const process: {
  env: Record<string, string | undefined>;
  exitCode?: number;
  exit(code: number): never;
};

export const BASE = process.env["TASKAPI_URL"] ?? "";
export const PASSWORD = "generated client passphrase";
export const PROBLEM = "tag:taskapi.dev,2026:problem/";
/** How many tasks the scenario makes, and lists LIMIT at a time: several pages and slices. */
export const TASKS = 7;
export const LIMIT = 3;
const MOST_LISTINGS = Math.ceil(TASKS / LIMIT) + 1;
/** Far above a run's few seconds: only a hung service or client reaches it. */
const DEADLINE_SECONDS = 120;

export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** A progress line printer that names the client being exercised. */
export function stepper(client: string): (message: string) => void {
  return (message) => console.log(`${client}: ${message}`);
}

/** An email no earlier run has registered. */
export function freshEmail(prefix: string): string {
  return `${prefix}-${Date.now()}-${crypto.randomUUID().slice(0, 8)}@example.com`;
}

/** One page or cursor slice as a client decoded it: its tasks' ids and its `links.next`. */
export interface Listing {
  ids: string[];
  next: string | null;
}

function listedOnce(created: ReadonlySet<string>, listed: readonly string[]): boolean {
  return (
    listed.length === created.size &&
    new Set(listed).size === listed.length &&
    listed.every((id) => created.has(id))
  );
}

/**
 * Lists every task LIMIT at a time by page, then by cursor, through a client's calls (each
 * asserts the `mode` it got; a page also gives `meta.total`), and checks that each way lists
 * each created task once. Returns the ids in page order.
 */
export async function listBothWays(
  created: ReadonlySet<string>,
  byPage: (page: number) => Promise<Listing & { total: number }>,
  byCursor: (cursor: string) => Promise<Listing>,
): Promise<string[]> {
  const paged: string[] = [];
  for (let page = 1; ; page++) {
    check(page <= MOST_LISTINGS, "the pages end");
    const listed = await byPage(page);
    paged.push(...listed.ids);
    if (listed.next === null) {
      check(listed.total === paged.length, "meta.total counts every task");
      break;
    }
  }
  const sliced: string[] = [];
  for (let cursor = "", slices = 1; ; slices++) {
    check(slices <= MOST_LISTINGS, "the slices end");
    const slice = await byCursor(cursor);
    sliced.push(...slice.ids);
    if (slice.next === null) break;
    cursor = new URL(slice.next, BASE).searchParams.get("cursor") ?? "";
  }
  const once = listedOnce(created, paged) && listedOnce(created, sliced);
  check(once, "each task listed once either way");
  return paged;
}

/** Runs a scenario against TASKAPI_URL; any failure, or no end by the deadline, exits non-zero. */
export function run(scenario: () => Promise<void>): void {
  const deadline = setTimeout(() => {
    console.error(`the scenario did not end within ${DEADLINE_SECONDS} s`);
    process.exit(1);
  }, DEADLINE_SECONDS * 1000);
  const passed = async (): Promise<void> => {
    check(BASE !== "", "TASKAPI_URL names the live service");
    await scenario();
  };
  passed()
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(() => clearTimeout(deadline));
}
