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
// Runtime API always answers with a Content-Length, so a small reader is enough. Reads land in one reused
// buffer (`onread`), and the `GET /next` that follows every answer is pipelined behind it in the same write
// (the server handles a connection's requests in order): the warm path is one write and two reads.
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
import Module, { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Writable } from "node:stream";
import { installTraceEnv, setTraceId } from "./trace_env.mjs";

const RUNTIME_PATH = "/2018-06-01/runtime";
const env = process.env; // the real environment object: read at start, never written per invocation
installTraceEnv();
const RUNTIME_DIR = env.LAMBDA_RUNTIME_DIR || "/var/runtime";
// The bundled AWS SDK sits in the root's node_modules so that ES modules find it (they ignore NODE_PATH
// and search only the parents' node_modules). CommonJS must find it where AWS's NODE_PATH puts it, after
// the layers' /opt/nodejs/node_modules, so a layer's own SDK wins: a node_modules listed in NODE_PATH is
// dropped from require's parent-directory walk and searched at its NODE_PATH position.
const nodePathDirs = new Set((env.NODE_PATH || "").split(path.delimiter).filter(Boolean));
if (nodePathDirs.has("/node_modules") && typeof Module._nodeModulePaths === "function") {
  const parentPaths = Module._nodeModulePaths;
  Module._nodeModulePaths = (from) => parentPaths(from).filter((dir) => !nodePathDirs.has(dir));
}
// Without a root of its own (the process backend) the SDK cannot be a parent's node_modules: the launcher
// names its directory after `--esm-sdk`, and a resolve hook lets ES modules fall back to it. The argument
// is taken out of process.argv so that functions see the argv AWS gives them.
const esmSdkFlag = process.argv.indexOf("--esm-sdk");
if (esmSdkFlag > 1) {
  const [, sdk] = process.argv.splice(esmSdkFlag, 2);
  if (sdk && typeof Module.register === "function") {
    Module.register("./sdk_resolve.mjs", import.meta.url, { data: { sdk } });
  }
}
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
    this.nextHead = `GET ${RUNTIME_PATH}/invocation/next HTTP/1.1\r\nHost: ${address}\r\n\r\n`;
    this.nextRequest = Buffer.from(this.nextHead, "latin1");
    this.nextIsAscii = !NON_ASCII.test(this.nextHead);
    this.socket = null;
    // Every read lands in this one buffer (net's `onread`): no allocation per read, and no stream machinery
    // between the socket and the parser. Whatever must outlive a read is copied out of it.
    this.readBuffer = Buffer.allocUnsafe(65536);
    this.partial = null; // bytes of a response head that has not arrived whole yet
    this.response = null; // {status, headers, body} whose body is still arriving
    this.filled = 0; // bytes of that body received
    // Requests sent and not answered yet, answered in this order: {message, resolve, reject, res, err}.
    this.inflight = [];
    this.prefetched = null; // the `/next` sent together with the last response (see `post`)
    this.fresh = false; // the connection was opened for what is in flight
    this.retried = false;
  }

  _connect() {
    const socket = net.createConnection({
      host: this.host,
      port: this.port,
      onread: { buffer: this.readBuffer, callback: (n, buf) => { if (this.socket === socket) this._onRead(buf, n); } },
    });
    socket.setNoDelay(true);
    socket.on("error", (err) => { if (this.socket === socket) this._fail(err); });
    socket.on("close", () => { if (this.socket === socket) this._fail(new Error("Runtime API connection closed")); });
    this.socket = socket;
    this.partial = null;
    this.response = null;
    return socket;
  }

  // Write `message` (a string: ASCII head and UTF-8 body; a Buffer; or an array of those).
  _send(message) {
    this.fresh = !this.socket;
    const socket = this.socket || this._connect();
    socket.ref();
    if (Array.isArray(message)) {
      for (const part of message) socket.write(part);
    } else {
      socket.write(message);
    }
  }

  _resend() {
    const messages = this.inflight.map((entry) => entry.message);
    this._send(messages.flat());
  }

  // The connection broke: what is in flight on a kept-alive connection is sent again, once, on a new one
  // (the server may have closed it while idle); on a fresh connection, or the second time, the error is final.
  _fail(err) {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.destroy();
    if (!this.inflight.length) return;
    if (!this.fresh && !this.retried) {
      this.retried = true;
      this._resend();
      return;
    }
    const entries = this.inflight;
    this.inflight = [];
    for (const entry of entries) {
      if (entry.reject) entry.reject(err);
      else entry.err = err;
    }
  }

  _onRead(buf, n) {
    let data = buf.subarray(0, n);
    if (this.partial) {
      data = Buffer.concat([this.partial, data]);
      this.partial = null;
    }
    let offset = 0;
    while (offset < data.length) {
      let res = this.response;
      if (!res) {
        const end = data.indexOf(HEAD_END, offset);
        if (end < 0) {
          this.partial = Buffer.from(data.subarray(offset)); // a copy: `buf` is reused by the next read
          return;
        }
        const head = data.toString("latin1", offset, end);
        offset = end + 4;
        let eol = head.indexOf("\r\n");
        if (eol < 0) eol = head.length;
        const sp = head.indexOf(" ");
        const sp2 = sp < 0 || sp >= eol ? -1 : head.indexOf(" ", sp + 1);
        const status = sp < 0 || sp >= eol ? NaN : Number(head.slice(sp + 1, sp2 < 0 || sp2 > eol ? eol : sp2));
        if (status === 100) continue;
        const headers = newHeaders();
        for (let pos = eol + 2; pos < head.length;) {
          let next = head.indexOf("\r\n", pos);
          if (next < 0) next = head.length;
          const c = head.indexOf(":", pos);
          if (c > pos && c < next) {
            setHeader(headers, head.slice(pos, c).trim().toLowerCase(), head.slice(c + 1, next).trim());
          }
          pos = next + 2;
        }
        const length = Number(headers["content-length"] || 0);
        if (data.length - offset >= length) { // the whole body is here: the common case
          this._complete({ status, headers, body: data.toString("utf8", offset, offset + length) });
          offset += length;
          continue;
        }
        res = this.response = { status, headers, body: Buffer.allocUnsafe(length) };
        this.filled = 0;
      }
      const n2 = Math.min(res.body.length - this.filled, data.length - offset);
      data.copy(res.body, this.filled, offset, offset + n2);
      this.filled += n2;
      offset += n2;
      if (this.filled === res.body.length) {
        this.response = null;
        res.body = res.body.toString("utf8");
        this._complete(res);
      }
    }
  }

  _complete(res) {
    const entry = this.inflight.shift();
    if (!entry) return; // nothing asked for it
    this.retried = false;
    const socket = this.socket;
    if ((res.headers["connection"] || "").toLowerCase() === "close") {
      this.socket = null;
      this.partial = null;
      if (socket) socket.destroy();
      if (this.inflight.length) this._resend(); // what was sent behind it, on a new connection
    } else if (socket && !this.inflight.length) {
      // An idle connection must not keep the event loop alive: the "empty event loop" that callback
      // handlers wait for is measured without it.
      socket.unref();
    }
    if (entry.resolve) entry.resolve(res);
    else entry.res = res;
  }

  _enqueue(message) {
    if (!this.inflight.length) this.retried = false;
    const entry = { message, resolve: null, reject: null, res: null, err: null };
    this.inflight.push(entry);
    return entry;
  }

  _wait(entry) {
    if (entry.res) return Promise.resolve(entry.res);
    if (entry.err) return Promise.reject(entry.err);
    return new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
  }

  request(message) {
    const entry = this._enqueue(message);
    this._send(message);
    return this._wait(entry);
  }

  // A POST. With `thenNext`, the `GET /next` that follows every answer goes out in the same write (HTTP/1.1
  // pipelining: the server reads requests in order, so it sees the answer first, as it would otherwise):
  // one write and one wake-up of the server fewer per invocation. `next()` picks it up.
  post(urlPath, payload, extraHeaders, thenNext) {
    let head = `POST ${urlPath} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n`;
    if (extraHeaders) {
      for (const [k, v] of Object.entries(extraHeaders)) head += `${k}: ${String(v).replace(/[\r\n]/g, " ")}\r\n`;
    }
    const isString = typeof payload === "string";
    const length = isString ? Buffer.byteLength(payload) : payload.length;
    head += `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
    let message;
    let wire;
    if (isString && length < 65536 && this.nextIsAscii && !NON_ASCII.test(head)) {
      // One string, one write: the head goes out as UTF-8 then, the same bytes as latin1 for ASCII.
      message = head + payload;
      wire = thenNext ? message + this.nextHead : message;
    } else {
      const body = isString ? Buffer.from(payload) : payload;
      const headBytes = Buffer.from(head, "latin1");
      message = length < 65536 ? Buffer.concat([headBytes, body]) : [headBytes, body];
      wire = !thenNext ? message
        : length < 65536 ? Buffer.concat([message, this.nextRequest]) : [...message, this.nextRequest];
    }
    const entry = this._enqueue(message);
    if (thenNext) this.prefetched = this._enqueue(this.nextRequest);
    this._send(wire);
    return this._wait(entry);
  }

  async next() {
    for (;;) {
      const prefetched = this.prefetched;
      this.prefetched = null;
      const res = await (prefetched ? this._wait(prefetched) : this.request(this.nextRequest));
      if (res.status === 200) return res;
      process.stderr.write(`[hearth runtime] invocation/next answered ${res.status}: ${res.body}\n`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  postResponse(id, payload, thenNext) {
    return this.post(`${RUNTIME_PATH}/invocation/${id}/response`, payload, null, thenNext);
  }

  postError(id, error, thenNext) {
    return this.post(`${RUNTIME_PATH}/invocation/${id}/error`, Buffer.from(JSON.stringify(error)),
      { "Lambda-Runtime-Function-Error-Type": error.errorType }, thenNext);
  }

  postInitError(error) {
    return this.post(`${RUNTIME_PATH}/init/error`, Buffer.from(JSON.stringify(error)),
      { "Lambda-Runtime-Function-Error-Type": error.errorType });
  }
}

// A response's headers by lower-case name. The ones the Runtime API sends are stored under constant names in
// an object of one shape: a store under a computed name would look the name up in V8's string table first.
function newHeaders() {
  return {
    "content-type": undefined,
    "content-length": undefined,
    connection: undefined,
    "lambda-runtime-aws-request-id": undefined,
    "lambda-runtime-deadline-ms": undefined,
    "lambda-runtime-invoked-function-arn": undefined,
    "lambda-runtime-trace-id": undefined,
    "lambda-runtime-client-context": undefined,
    "lambda-runtime-cognito-identity": undefined,
  };
}

function setHeader(headers, name, value) {
  switch (name) {
    case "content-type": headers["content-type"] = value; break;
    case "content-length": headers["content-length"] = value; break;
    case "connection": headers.connection = value; break;
    case "lambda-runtime-aws-request-id": headers["lambda-runtime-aws-request-id"] = value; break;
    case "lambda-runtime-deadline-ms": headers["lambda-runtime-deadline-ms"] = value; break;
    case "lambda-runtime-invoked-function-arn": headers["lambda-runtime-invoked-function-arn"] = value; break;
    case "lambda-runtime-trace-id": headers["lambda-runtime-trace-id"] = value; break;
    case "lambda-runtime-client-context": headers["lambda-runtime-client-context"] = value; break;
    case "lambda-runtime-cognito-identity": headers["lambda-runtime-cognito-identity"] = value; break;
    default: headers[name] = value;
  }
}

const NON_ASCII = /[^\x00-\x7f]/;
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");

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
      // As process.once would, without its wrapper: removed before it runs.
      const listener = () => {
        process.removeListener("beforeExit", listener);
        finish(outcome);
      };
      onBeforeExit = listener;
      process.on("beforeExit", listener);
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
      event = JSON.parse(body);
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
    event = JSON.parse(res.body);
  } catch (err) {
    const rapid = toRapidError(new RuntimeError("Runtime.UnmarshalError", `Unable to parse input as json: ${err.message}`));
    console.error("Invoke Error", formatted(rapid));
    await client.postError(id, rapid, true);
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
  setTraceId(headers["lambda-runtime-trace-id"]); // never setenv(3) per invocation: see trace_env.mjs
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
    await client.postError(id, rapid, true);
    return;
  }
  let payload;
  try {
    payload = JSON.stringify(outcome.result === undefined ? null : outcome.result);
    // JSON.stringify answers undefined for a function or a symbol: fail as Buffer.from would, with its message.
    if (typeof payload !== "string") Buffer.from(payload);
  } catch (err) {
    const rapid = toRapidError(new RuntimeError("Runtime.MarshalError", `Unable to stringify response body: ${err.message}`));
    console.error("Invoke Error", formatted(rapid));
    await client.postError(id, rapid, true);
    return;
  }
  await client.postResponse(id, payload, true);
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
