// Promise.withResolvers (ES2024) is used by @resonatehq/sdk 0.11.5, which declares Node >= 22;
// Node 20 lacks it.  Loaded with `node --require ./polyfill.cjs` before the SDK is imported.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
