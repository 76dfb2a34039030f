// Runs the official TypeScript SDK's own response and message validators (the type guards
// @resonatehq/sdk exports from its network/types module, which its HttpNetwork applies to
// every answer and every SSE message) over records captured from a Sustain server.
//
//   node validate.mjs < captured.jsonl
//
// Each input line is {"request": envelope, "response": envelope} or {"message": object}.
// Prints one JSON object: {"checked": n, "failures": [{why, index, line}]} (index: input line).
import * as sdk from "@resonatehq/sdk";
import { createInterface } from "node:readline";

// The guard for each kind, e.g. "task.fence" -> isTaskFenceRes.
function guardOf(kind) {
  const name =
    "is" +
    kind
      .split(/[._]/)
      .map((part) => part[0].toUpperCase() + part.slice(1))
      .join("") +
    "Res";
  return sdk[name];
}

// What HttpNetwork accepts before it even parses the body.
const HTTP_STATUSES = new Set([200, 300, 404, 409, 422, 501]);

const failures = [];
let checked = 0;
let index = -1;
const lines = createInterface({ input: process.stdin });
for await (const raw of lines) {
  index += 1;
  if (!raw.trim()) continue;
  const entry = JSON.parse(raw);
  checked += 1;
  const at = index;
  const fail = (why) => failures.push({ why, index: at, line: raw.slice(0, 600) });
  if ("message" in entry) {
    if (!sdk.isMessage(entry.message)) fail("isMessage rejects the push message");
    continue;
  }
  const { request, response, httpStatus } = entry;
  const guard = guardOf(request.kind);
  if (typeof guard !== "function") {
    fail(`no SDK guard for ${request.kind}`);
    continue;
  }
  if (!sdk.isResponse(response)) fail("isResponse rejects the answer");
  if (!guard(response)) fail(`${guard.name} rejects the answer`);
  if (response.kind !== request.kind) fail("kind differs from the request's");
  if (response.head?.corrId !== request.head.corrId) fail("corrId differs from the request's");
  if (httpStatus !== undefined && response.head?.status < 400 && !HTTP_STATUSES.has(httpStatus))
    fail(`HTTP status ${httpStatus} is not one HttpNetwork accepts`);
}
console.log(JSON.stringify({ checked, failures }));
