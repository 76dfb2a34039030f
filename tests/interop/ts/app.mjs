// Programs written against the official TypeScript SDK (@resonatehq/sdk 0.11.5, generator
// API), run unmodified on Node 20 with ./polyfill.cjs preloaded.  The only thing pointing
// them at Sustain is `new Resonate({ url })`.
//
//   node --require ./polyfill.cjs app.mjs worker --url U --group G
//   node --require ./polyfill.cjs app.mjs cases  --url U --group G --plan JSON
//
// `worker` serves the registered functions in group G until SIGTERM; `cases` joins G too,
// runs every case of the plan concurrently and prints one `RESULT {json}` line per case.
import { Codec, Resonate } from "@resonatehq/sdk";

function parseArgs(argv) {
  const args = { command: argv[0], group: "default", plan: "[]", ttl: "60" };
  for (let i = 1; i < argv.length; i += 2) args[argv[i].replace(/^--/, "")] = argv[i + 1];
  return args;
}

// -- functions ------------------------------------------------------------------------------

function tsStep(ctx, n) {
  return n * 10;
}

function clockMs(ctx) {
  return Date.now();
}

function* tsTwoSteps(ctx, n) {
  const a = yield* ctx.run(tsStep, n);
  const b = yield* ctx.run(tsStep, n + 1);
  return [a, b];
}

function* tsSleeper(ctx, ms) {
  const before = yield* ctx.run(clockMs);
  yield* ctx.sleep(ms);
  const after = yield* ctx.run(clockMs);
  return after - before;
}

function tsAdd(ctx, a, b) {
  return a + b;
}

function* tsCallRemote(ctx, target, a, b) {
  const future = yield* ctx.beginRpc("ts_add", a, b, ctx.options({ target }));
  const first = yield* future;
  const second = yield* ctx.rpc("ts_add", first, 1, ctx.options({ target }));
  return [first, second];
}

function tsGreet(ctx, payload) {
  return { got: payload, by: "official-ts" };
}

// A generator function: the SDK never retries it, so the rejection is final at once.
function* tsFail(ctx, message) {
  throw new Error(message);
}

function* tsCallSustain(ctx, target, payload) {
  const ok = yield* ctx.rpc("sus_echo", payload, ctx.options({ target }));
  let error = null;
  try {
    yield* ctx.rpc("sus_fail", "boom from a Sustain worker", ctx.options({ target }));
  } catch (e) {
    error = { type: e?.constructor?.name ?? typeof e, message: e?.message ?? String(e) };
  }
  return { ok, error };
}

function* tsCallSustainWorkflow(ctx, target, n, tsTarget) {
  return yield* ctx.rpc("sus_workflow", n, tsTarget, "ts_add", ctx.options({ target }));
}

function connect(args) {
  const resonate = new Resonate({
    url: args.url,
    group: args.group,
    pid: args.pid,
    ttl: Number(args.ttl) * 1000,
    logLevel: "warn",
    // Passed explicitly: 0.11.5 reads RESONATE_TOKEN for requests only, and its poll stream
    // gets a token only from this option (docs/interop.md).
    token: process.env.RESONATE_TOKEN || undefined,
  });
  resonate.register("ts_step", tsStep);
  resonate.register("ts_clock", clockMs);
  resonate.register("ts_two_steps", tsTwoSteps);
  resonate.register("ts_sleeper", tsSleeper);
  resonate.register("ts_add", tsAdd);
  resonate.register("ts_call_remote", tsCallRemote);
  resonate.register("ts_greet", tsGreet);
  resonate.register("ts_fail", tsFail);
  resonate.register("ts_call_sustain", tsCallSustain);
  resonate.register("ts_call_sustain_workflow", tsCallSustainWorkflow);
  return resonate;
}

async function runCase(resonate, c) {
  let result;
  try {
    const opts = c.target ? [resonate.options({ target: c.target })] : [];
    let value;
    if (c.op === "run") value = await resonate.run(c.id, c.func, ...(c.args ?? []), ...opts);
    else if (c.op === "rpc") value = await resonate.rpc(c.id, c.func, ...(c.args ?? []), ...opts);
    else if (c.op === "beginRpc") {
      const handle = await resonate.beginRpc(c.id, c.func, ...(c.args ?? []), ...opts);
      value = { id: handle.id, result: await handle.result() };
    } else throw new Error(`unknown op ${c.op}`);
    result = { name: c.name, ok: true, value: value === undefined ? null : value };
  } catch (e) {
    result = { name: c.name, ok: false, type: e?.constructor?.name, error: e?.message ?? String(e) };
  }
  console.log("RESULT " + JSON.stringify(result));
}

// `codec`: encode and decode with the SDK's own codec (no server involved).  Reads
// {values, decode, error, decode_errors} on stdin, prints CODEC {...}.  Infinities travel
// through this JSON as the strings "+inf" / "-inf".
async function codecCheck() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const job = JSON.parse(input);
  const codec = new Codec();
  const toInf = (v) => (v === "+inf" ? Infinity : v === "-inf" ? -Infinity : v);
  const fromInf = (v) => (v === Infinity ? "+inf" : v === -Infinity ? "-inf" : v);
  const deep = (v, f) =>
    Array.isArray(v) ? v.map((x) => deep(x, f)) : v && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deep(x, f)])) : f(v);
  const errorOf = (value) => {
    const e = codec.decode(value);
    return { type: e?.constructor?.name, name: e?.name, message: e?.message, stack: e?.stack };
  };
  const out = {
    encoded: job.values.map((v) => codec.encode(deep(v, toInf))),
    decoded: job.decode.map((v) => deep(codec.decode(v), fromInf) ?? null),
    error: codec.encode(new Error(job.error)),
    decoded_errors: job.decode_errors.map(errorOf),
  };
  console.log("CODEC " + JSON.stringify(out));
}

async function main() {
  if (process.argv[2] === "codec") return codecCheck();
  const args = parseArgs(process.argv.slice(2));
  const resonate = connect(args);
  if (args.command === "worker") {
    console.log(`WORKER ${args.group}`);
    await new Promise((resolve) => process.once("SIGTERM", resolve));
  } else if (args.command === "cases") {
    const plan = JSON.parse(args.plan);
    await Promise.all(plan.map((c) => runCase(resonate, c)));
  } else {
    throw new Error(`unknown command ${args.command}`);
  }
  await resonate.stop();
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
