// What the TypeScript client scenarios share: the live service's address, the scenario's sizes,
// its assertions and how it ends. Each scenario (clients/typescript/, for openapi-fetch over
// openapi-typescript's types, and clients/openapi-generator/typescript/, for typescript-fetch)
// walks the same flow through its own client.

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

export const BASE = process.env["TASKAPI_URL"] ?? "";
export const PASSWORD = "generated client passphrase";
export const PROBLEM = "tag:taskapi.dev,2026:problem/";
/** How many tasks the scenario makes, and lists LIMIT at a time: several pages and slices. */
export const TASKS = 7;
export const LIMIT = 3;

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

/** The cursor a slice's `links.next` carries to the next slice. */
export function cursorOf(next: string): string {
  return new URL(next, BASE).searchParams.get("cursor") ?? "";
}

/** Whether a listing holds each created task exactly once. */
export function listedOnce(created: ReadonlySet<string>, listed: readonly string[]): boolean {
  return (
    listed.length === created.size &&
    new Set(listed).size === listed.length &&
    listed.every((id) => created.has(id))
  );
}

/** Runs a scenario against TASKAPI_URL; any failure is reported and exits non-zero. */
export function run(scenario: () => Promise<void>): void {
  const passed = async (): Promise<void> => {
    check(BASE !== "", "TASKAPI_URL names the live service");
    await scenario();
  };
  passed().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
