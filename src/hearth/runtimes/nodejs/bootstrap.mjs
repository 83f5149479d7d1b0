// Hearth's Node.js runtime: the loop that runs a Node.js function inside an execution environment.
//
// It owns, inside the environment: loading the handler (CommonJS or ES module, as AWS's Node.js runtime
// resolves it), the context object, console formatting, and the Runtime API client loop
// (next -> handler -> response or error). Error shapes and log lines follow AWS's Node.js runtime.
// It must never depend on npm packages (it runs on a bare Node 16+), and never writes anywhere but
// stdout/stderr and the Runtime API.
//
// Why a raw `net` client instead of node:http: every warm invocation makes two Runtime API requests, and
// http's Agent and parser machinery costs more than the rest of the runtime's work per request. The
// Runtime API always answers with a Content-Length, so a small reader is enough.
//
// Response streaming: `awslambda.streamifyResponse(handler)` marks a handler `(event, responseStream,
// context)`; its writes go to the Runtime API as a chunked `/response` with
// `Lambda-Runtime-Function-Response-Mode: streaming` as they happen, and an error ends it with the
// `Lambda-Runtime-Function-Error-Type`/`-Body` trailers. `awslambda.HttpResponseStream.from(stream,
// {statusCode, headers, cookies})` sends the HTTP metadata first (JSON, then 8 NUL bytes), as AWS's runtime.

import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Writable } from "node:stream";

const RUNTIME_PATH = "/2018-06-01/runtime";
const env = process.env;
const RUNTIME_DIR = env.LAMBDA_RUNTIME_DIR || "/var/runtime";
// AWS's runtime requires user modules from /var/runtime/index.mjs; "Require stack" messages name it.
const runtimeRequire = createRequire(path.join(RUNTIME_DIR, "index.mjs"));

// ---------------------------------------------------------------------------------------------------
// Runtime API client

class RuntimeClient {
  constructor(address) {
    const i = address.lastIndexOf(":");
    this.host = address.slice(0, i).replace(/^\[|\]$/g, "") || "127.0.0.1";
    this.port = Number(address.slice(i + 1));
    this.hostHeader = address;
    this.socket = null;
    this.buf = Buffer.alloc(0);
    this.pending = null; // {resolve, reject} of the request in flight (one at a time)
  }

  _connect() {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: this.host, port: this.port });
      socket.setNoDelay(true);
      const onError = (err) => reject(err);
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.removeListener("error", onError);
        socket.on("data", (chunk) => this._onData(chunk));
        socket.on("error", (err) => this._fail(err));
        socket.on("close", () => {
          if (this.socket === socket) this.socket = null;
          this._fail(new Error("Runtime API connection closed"));
        });
        this.socket = socket;
        this.buf = Buffer.alloc(0);
        resolve(socket);
      });
    });
  }

  _fail(err) {
    const pending = this.pending;
    this.pending = null;
    if (pending) pending.reject(err);
  }

  _onData(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const pending = this.pending;
    if (!pending) return;
    const end = this.buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = this.buf.toString("latin1", 0, end).split("\r\n");
    const status = Number(head[0].split(" ")[1]);
    const headers = {};
    for (let i = 1; i < head.length; i++) {
      const line = head[i];
      const c = line.indexOf(":");
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    if (status === 100) {
      this.buf = this.buf.subarray(end + 4);
      if (this.buf.length) this._onData(Buffer.alloc(0));
      return;
    }
    const length = Number(headers["content-length"] || 0);
    if (this.buf.length < end + 4 + length) return;
    const body = this.buf.subarray(end + 4, end + 4 + length);
    this.buf = this.buf.subarray(end + 4 + length);
    this.pending = null;
    if ((headers["connection"] || "").toLowerCase() === "close" && this.socket) {
      this.socket.destroy();
      this.socket = null;
    }
    pending.resolve({ status, headers, body });
  }

  async request(method, urlPath, body, extraHeaders) {
    let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n`;
    if (extraHeaders) {
      for (const [k, v] of Object.entries(extraHeaders)) head += `${k}: ${String(v).replace(/[\r\n]/g, " ")}\r\n`;
    }
    let message;
    if (method === "POST") {
      const payload = body || Buffer.alloc(0);
      head += `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`;
      message = payload.length < 65536 ? Buffer.concat([Buffer.from(head, "latin1"), payload]) : null;
      if (!message) message = [Buffer.from(head, "latin1"), payload];
    } else {
      message = Buffer.from(head + "\r\n", "latin1");
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const fresh = !this.socket;
      const socket = this.socket || (await this._connect());
      socket.ref();
      try {
        return await new Promise((resolve, reject) => {
          this.pending = { resolve, reject };
          if (Array.isArray(message)) {
            socket.write(message[0]);
            socket.write(message[1]);
          } else {
            socket.write(message);
          }
        });
      } catch (err) {
        if (this.socket) this.socket.destroy();
        this.socket = null;
        if (fresh || attempt) throw err;
      } finally {
        // An idle connection must not keep the event loop alive: the "empty event loop" that callback
        // handlers wait for is measured without it.
        if (this.socket) this.socket.unref();
      }
    }
    throw new Error("unreachable");
  }

  async next() {
    for (;;) {
      const res = await this.request("GET", `${RUNTIME_PATH}/invocation/next`);
      if (res.status === 200) return res;
      process.stderr.write(`[hearth runtime] invocation/next answered ${res.status}: ${res.body}\n`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  postResponse(id, payload) {
    return this.request("POST", `${RUNTIME_PATH}/invocation/${id}/response`, payload);
  }

  postError(id, error) {
    return this.request("POST", `${RUNTIME_PATH}/invocation/${id}/error`, Buffer.from(JSON.stringify(error)),
      { "Lambda-Runtime-Function-Error-Type": error.errorType });
  }

  postInitError(error) {
    return this.request("POST", `${RUNTIME_PATH}/init/error`, Buffer.from(JSON.stringify(error)),
      { "Lambda-Runtime-Function-Error-Type": error.errorType });
  }
}

// ---------------------------------------------------------------------------------------------------
// Response streaming

const HANDLER_STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const HANDLER_HIGHWATERMARK = Symbol.for("aws.lambda.runtime.handler.streaming.highWaterMark");
const STREAM_RESPONSE = "response";
const HTTP_INTEGRATION_TYPE = "application/vnd.awslambda.http-integration-response";

// One streamed response: its own connection, the head sent at the first write (so that a content type set
// before it is used), every write passed on at once as one chunk.
class ResponseStream extends Writable {
  constructor(address, requestId, highWaterMark) {
    super({ highWaterMark: highWaterMark || 64 * 1024 });
    const i = address.lastIndexOf(":");
    this._socket = net.createConnection({ host: address.slice(0, i).replace(/^\[|\]$/g, "") || "127.0.0.1",
      port: Number(address.slice(i + 1)) });
    this._socket.setNoDelay(true);
    this._hostHeader = address;
    this._requestId = requestId;
    this._contentType = "application/octet-stream";
    this._headSent = false;
    this._finished = false;
    let buf = Buffer.alloc(0);
    this.answered = new Promise((resolve) => {
      const done = (status) => { this._socket.destroy(); resolve(status); };
      this._socket.on("data", (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.toString("latin1", 0, end);
        const m = /content-length:\s*(\d+)/i.exec(head);
        if (buf.length >= end + 4 + (m ? Number(m[1]) : 0)) done(Number(head.split(" ")[1]));
      });
      this._socket.on("error", () => done(0));
      this._socket.on("close", () => done(0));
    });
  }

  setContentType(contentType) {
    if (!this._headSent) this._contentType = String(contentType);
  }

  _sendHead() {
    if (this._headSent) return;
    this._headSent = true;
    this._socket.write(`POST ${RUNTIME_PATH}/invocation/${this._requestId}/response HTTP/1.1\r\n`
      + `Host: ${this._hostHeader}\r\nContent-Type: ${this._contentType.replace(/[\r\n]/g, " ")}\r\n`
      + "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
      + "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n", "latin1");
  }

  _write(chunk, encoding, callback) {
    this._sendHead();
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding);
    if (!data.length) { callback(); return; }
    this._socket.write(`${data.length.toString(16)}\r\n`, "latin1");
    this._socket.write(data);
    this._socket.write("\r\n", "latin1", () => callback());
  }

  _final(callback) {
    this._sendHead();
    this._finished = true;
    this._socket.write("0\r\n\r\n", "latin1", () => callback());
  }

  // End the stream with an error (trailers), unless it already ended.
  fail(rapid) {
    if (this._finished) return false;
    this._finished = true;
    this._sendHead();
    const body = Buffer.from(JSON.stringify(rapid)).toString("base64");
    this._socket.write(`0\r\nLambda-Runtime-Function-Error-Type: ${String(rapid.errorType).replace(/[\r\n]/g, " ")}`
      + `\r\nLambda-Runtime-Function-Error-Body: ${body}\r\n\r\n`, "latin1");
    return true;
  }
}

class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(HTTP_INTEGRATION_TYPE);
    underlyingStream.write(Buffer.concat([Buffer.from(JSON.stringify(prelude || {})), Buffer.alloc(8)]));
    return underlyingStream;
  }
}

globalThis.awslambda = {
  streamifyResponse(handler, options) {
    handler[HANDLER_STREAMING] = STREAM_RESPONSE;
    if (options && typeof options.highWaterMark === "number") handler[HANDLER_HIGHWATERMARK] = options.highWaterMark;
    return handler;
  },
  HttpResponseStream,
};

// ---------------------------------------------------------------------------------------------------
// Errors

class RuntimeError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

function isError(value) {
  return value instanceof Error || (util.types && util.types.isNativeError && util.types.isNativeError(value)) ||
    (value && typeof value === "object" && typeof value.name === "string" && typeof value.message === "string" &&
     typeof value.stack === "string");
}

// The error as the Runtime API receives it ("trace"), and as the log shows it ("stack").
function toRapidError(error) {
  try {
    if (isError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: typeof error.stack === "string" ? error.stack.split("\n") : [],
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch {
    return {
      errorType: "handled",
      errorMessage: "callback called with Error argument, but there was a problem while retrieving one or more of "
        + "its message, name, and stack",
      trace: [],
    };
  }
}

function formatted(rapid) {
  const { trace, ...rest } = rapid;
  return "\t" + JSON.stringify({ ...rest, stack: trace });
}

// ---------------------------------------------------------------------------------------------------
// Logging: console.* as AWS formats it

let currentRequestId; // undefined until the first invocation, as AWS prints it
const jsonLogs = (env.AWS_LAMBDA_LOG_FORMAT || "").toUpperCase() === "JSON";
const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };

function installConsole() {
  const minLevel = jsonLogs ? (LEVELS[(env.AWS_LAMBDA_LOG_LEVEL || "").toUpperCase()] || LEVELS.INFO) : 0;
  const write = (line) => process.stdout.write(line);
  const make = (level) => {
    if (LEVELS[level] < minLevel) return () => {};
    if (jsonLogs) {
      return (...args) => {
        const record = { timestamp: new Date().toISOString(), level, requestId: currentRequestId };
        if (args.length === 1 && isError(args[0])) {
          record.message = util.format(args[0]);
          record.errorType = args[0].name;
          record.errorMessage = args[0].message;
          record.stackTrace = typeof args[0].stack === "string" ? args[0].stack.split("\n") : [];
        } else {
          record.message = util.format(...args);
        }
        let text;
        try {
          text = JSON.stringify(record);
        } catch {
          text = JSON.stringify({ ...record, message: String(record.message) });
        }
        write(text + "\n");
      };
    }
    return (...args) => {
      const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...args)}`;
      // One log event per call: newlines inside a message become carriage returns, as AWS does.
      write(line.replace(/\n/g, "\r") + "\n");
    };
  };
  console.trace = make("TRACE");
  console.debug = make("DEBUG");
  console.info = make("INFO");
  console.log = make("INFO");
  console.warn = make("WARN");
  console.error = make("ERROR");
  console.fatal = make("FATAL");
}

// ---------------------------------------------------------------------------------------------------
// Loading the handler

function hasTypeModule(file) {
  let dir = path.dirname(file);
  for (;;) {
    const candidate = path.join(dir, "package.json");
    try {
      const pkg = JSON.parse(fs.readFileSync(candidate, "utf8"));
      return pkg && pkg.type === "module";
    } catch (err) {
      if (err && err.code !== "ENOENT") return false;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

async function requireOrImport(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);
  if (isFile(base)) return runtimeRequire(base);
  const esmPackage = hasTypeModule(base);
  if (!esmPackage && isFile(base + ".js")) return runtimeRequire(base + ".js");
  if (esmPackage && isFile(base + ".js")) return import(pathToFileURL(base + ".js").href);
  if (isFile(base + ".mjs")) return import(pathToFileURL(base + ".mjs").href);
  if (isFile(base + ".cjs")) return runtimeRequire(base + ".cjs");
  // Last resort, as AWS: a package of that name (node_modules in the task root, NODE_PATH).
  const resolved = runtimeRequire.resolve(moduleName, { paths: [appRoot, path.resolve(appRoot, moduleRoot)] });
  return runtimeRequire(resolved);
}

async function loadHandler(appRoot, fullHandler) {
  if (fullHandler.includes("..")) {
    throw new RuntimeError("Runtime.MalformedHandlerName", `'${fullHandler}' is not a valid handler name. `
      + "Use absolute paths when specifying root directories in handler names.");
  }
  const handlerString = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new RuntimeError("Runtime.MalformedHandlerName", "Bad handler");
  const [, moduleName, handlerPath] = match;
  let userModule;
  try {
    userModule = await requireOrImport(appRoot, moduleRoot, moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) throw new RuntimeError("Runtime.UserCodeSyntaxError", String(err));
    if (err && err.code === "MODULE_NOT_FOUND") throw new RuntimeError("Runtime.ImportModuleError", String(err));
    throw err;
  }
  const handler = handlerPath.split(".").reduce((obj, key) => (obj == null ? undefined : obj[key]), userModule);
  if (handler === undefined) {
    throw new RuntimeError("Runtime.HandlerNotFound", `${fullHandler} is undefined or not exported`);
  }
  if (typeof handler !== "function") {
    throw new RuntimeError("Runtime.HandlerNotFound", `${fullHandler} is not a function`);
  }
  return handler;
}

// ---------------------------------------------------------------------------------------------------
// One invocation

function parseJsonHeader(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

// Read once: process.env lookups cross into C++ on every access, and these never change in an environment.
let staticContext = null;

function makeContext(headers, state) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"] || 0);
  const fixed = staticContext || (staticContext = {
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
  });
  const context = {
    functionName: fixed.functionName,
    functionVersion: fixed.functionVersion,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    memoryLimitInMB: fixed.memoryLimitInMB,
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    logGroupName: fixed.logGroupName,
    logStreamName: fixed.logStreamName,
    identity: parseJsonHeader(headers["lambda-runtime-cognito-identity"]),
    clientContext: parseJsonHeader(headers["lambda-runtime-client-context"]),
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    // Legacy completion methods (Node.js 0.10 era), still honoured by AWS.
    done: (err, result) => state.callback(err, result),
    succeed: (result) => state.callback(null, result),
    fail: (err) => state.callback(err || "handled"),
  };
  Object.defineProperty(context, "callbackWaitsForEmptyEventLoop", {
    get: () => state.waitForEmptyLoop,
    set: (value) => { state.waitForEmptyLoop = Boolean(value); },
    enumerable: true,
  });
  return context;
}

let current = null; // {id, finish} of the invocation running now, for process-level error hooks

function runInvocation(handler, headers, body) {
  return new Promise((resolve) => {
    const id = headers["lambda-runtime-aws-request-id"];
    let settled = false;
    let onBeforeExit = null;
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      if (onBeforeExit) process.removeListener("beforeExit", onBeforeExit);
      current = null;
      resolve(outcome);
    };
    const whenLoopEmpty = (outcome) => {
      if (onBeforeExit) process.removeListener("beforeExit", onBeforeExit);
      onBeforeExit = () => finish(outcome);
      process.once("beforeExit", onBeforeExit);
    };
    const state = {
      waitForEmptyLoop: true,
      callback: (err, result) => {
        const outcome = err !== undefined && err !== null ? { error: err } : { result };
        if (state.waitForEmptyLoop) whenLoopEmpty(outcome);
        else finish(outcome);
      },
    };
    current = { id, finish };
    let event;
    try {
      event = JSON.parse(body.toString("utf8"));
    } catch (err) {
      finish({ error: new RuntimeError("Runtime.UnmarshalError", `Unable to parse input as json: ${err.message}`) });
      return;
    }
    const context = makeContext(headers, state);
    // A handler that neither returns a promise nor calls back answers null once the event loop is empty.
    whenLoopEmpty({ result: null });
    let returned;
    try {
      returned = handler(event, context, state.callback);
    } catch (err) {
      finish({ error: err });
      return;
    }
    if (returned && typeof returned.then === "function") {
      returned.then((result) => finish({ result }), (err) => finish({ error: err === undefined ? "undefined" : err }));
    }
  });
}

async function handleStreamingInvocation(client, handler, res) {
  const headers = res.headers;
  const id = headers["lambda-runtime-aws-request-id"];
  let event;
  try {
    event = JSON.parse(res.body.toString("utf8"));
  } catch (err) {
    const rapid = toRapidError(new RuntimeError("Runtime.UnmarshalError", `Unable to parse input as json: ${err.message}`));
    console.error("Invoke Error", formatted(rapid));
    await client.postError(id, rapid);
    return;
  }
  const stream = new ResponseStream(client.hostHeader, id, handler[HANDLER_HIGHWATERMARK]);
  const state = { waitForEmptyLoop: false, callback: () => {} };
  const context = makeContext(headers, state);
  let failure = null;
  try {
    const result = await handler(event, stream, context);
    if (!stream.writableEnded && !stream.destroyed) {
      if (result !== undefined && result !== null) {
        stream.write(typeof result === "string" || Buffer.isBuffer(result) ? result : JSON.stringify(result));
      }
      stream.end();
    }
  } catch (err) {
    failure = err === undefined ? "undefined" : err;
  }
  if (failure !== null) {
    const rapid = toRapidError(failure);
    console.error("Invoke Error", formatted(rapid));
    if (!stream.writableEnded && !stream.destroyed) {
      // Writes already queued go first (a write's callback runs after every earlier one); then the trailers.
      await new Promise((resolve) => stream.write(Buffer.alloc(0), () => resolve()));
      stream.fail(rapid);
    }
  }
  await stream.answered;
}

async function handleInvocation(client, handler, res) {
  const headers = res.headers;
  const id = headers["lambda-runtime-aws-request-id"];
  currentRequestId = id;
  if (headers["lambda-runtime-trace-id"]) env._X_AMZN_TRACE_ID = headers["lambda-runtime-trace-id"];
  else delete env._X_AMZN_TRACE_ID;
  if (handler[HANDLER_STREAMING] === STREAM_RESPONSE) {
    current = { id, finish: () => {} };
    try {
      await handleStreamingInvocation(client, handler, res);
    } finally {
      current = null;
    }
    return;
  }
  const outcome = await runInvocation(handler, headers, res.body);
  if ("error" in outcome) {
    const rapid = toRapidError(outcome.error);
    console.error("Invoke Error", formatted(rapid));
    await client.postError(id, rapid);
    return;
  }
  let payload;
  try {
    payload = Buffer.from(JSON.stringify(outcome.result === undefined ? null : outcome.result));
  } catch (err) {
    const rapid = toRapidError(new RuntimeError("Runtime.MarshalError", `Unable to stringify response body: ${err.message}`));
    console.error("Invoke Error", formatted(rapid));
    await client.postError(id, rapid);
    return;
  }
  await client.postResponse(id, payload);
}

// ---------------------------------------------------------------------------------------------------
// Main

async function main() {
  installConsole();
  const client = new RuntimeClient(env.AWS_LAMBDA_RUNTIME_API || "127.0.0.1:9001");
  const appRoot = env.LAMBDA_TASK_ROOT || process.cwd();

  const fatal = async (kind, error) => {
    // An error outside any invocation's control: report it to whoever waits, then exit like AWS (129).
    const rapid = toRapidError(error);
    console.error(kind, formatted(rapid));
    try {
      if (current) await client.postError(current.id, rapid);
      else if (!initialized) await client.postInitError(rapid);
    } finally {
      process.exit(129);
    }
  };
  let initialized = false;
  process.on("uncaughtException", (err) => { fatal("Uncaught Exception", err); });
  process.on("unhandledRejection", (reason) => {
    const message = isError(reason) ? `${reason.name}: ${reason.message}` : String(reason);
    const error = new RuntimeError("Runtime.UnhandledPromiseRejection", message);
    if (isError(reason)) error.stack = `Runtime.UnhandledPromiseRejection: ${message}\n${(reason.stack || "").split("\n").slice(1).join("\n")}`;
    fatal("Unhandled Promise Rejection", error);
  });

  let handler;
  try {
    handler = await loadHandler(appRoot, env._HANDLER || "");
  } catch (err) {
    await fatal("Uncaught Exception", err);
    return;
  }
  initialized = true;
  for (;;) {
    const res = await client.next();
    await handleInvocation(client, handler, res);
  }
}

main();
