// `process.env._X_AMZN_TRACE_ID` for every invocation, without growing the C environment.
//
// It owns the one environment variable that changes per invocation. Why not `process.env.X = value`:
// Node's process.env setter calls setenv(3), and glibc's setenv never frees a value it installed (a
// pointer to it may still be held by getenv's callers), so every distinct trace header stays in the
// process for good: ~200 bytes per invocation, ~100 MB after a few hundred thousand invocations of a
// long-lived environment. Instead process.env becomes a Proxy over the real environment object that
// answers this one name from a JavaScript variable and forwards everything else untouched. What code
// sees is what AWS's runtime shows (reads, `in`, Object.keys, spreading, JSON.stringify, delete); child
// processes get it too, because child_process copies `process.env` by enumerating it. Only native code
// calling getenv(3) directly no longer sees it (none of the AWS SDKs or X-Ray libraries do).
// It never touches any other variable.

const TRACE_KEY = "_X_AMZN_TRACE_ID";
let traceId; // undefined: not set

// Replaces process.env with the proxy (once). A value already in the environment is carried over.
export function installTraceEnv() {
  const real = process.env;
  if (Object.prototype.hasOwnProperty.call(real, TRACE_KEY)) {
    traceId = real[TRACE_KEY];
    delete real[TRACE_KEY];
  }
  process.env = new Proxy(real, {
    get(target, key) {
      return key === TRACE_KEY ? traceId : Reflect.get(target, key);
    },
    set(target, key, value) {
      if (key !== TRACE_KEY) return Reflect.set(target, key, value);
      traceId = `${value}`; // process.env stores strings, as the real object would
      return true;
    },
    has(target, key) {
      return key === TRACE_KEY ? traceId !== undefined : Reflect.has(target, key);
    },
    deleteProperty(target, key) {
      if (key !== TRACE_KEY) return Reflect.deleteProperty(target, key);
      traceId = undefined;
      return true;
    },
    ownKeys(target) {
      const keys = Reflect.ownKeys(target);
      if (traceId !== undefined) keys.push(TRACE_KEY);
      return keys;
    },
    getOwnPropertyDescriptor(target, key) {
      if (key !== TRACE_KEY) return Reflect.getOwnPropertyDescriptor(target, key);
      return traceId === undefined ? undefined
        : { value: traceId, writable: true, enumerable: true, configurable: true };
    },
    defineProperty(target, key, descriptor) {
      if (key !== TRACE_KEY) return Reflect.defineProperty(target, key, descriptor);
      traceId = `${descriptor.value}`;
      return true;
    },
  });
}

// The invocation's trace header, or none (an absent header unsets it, as AWS's runtime does).
export function setTraceId(value) {
  traceId = value ? value : undefined;
}
