// ES-module resolution hooks for sandboxes without their own root (the process backend), where the
// bundled AWS SDK cannot sit in a parent directory's node_modules: a bare specifier that nothing else
// resolves (the function's own node_modules first, as always) is retried from the SDK's directory.
// Registered by bootstrap.mjs only there; the namespace backend mounts the SDK at /node_modules instead.
import path from "node:path";
import { pathToFileURL } from "node:url";

let sdkParent = null;

export async function initialize(data) {
  // A file beside the SDK's node_modules: resolving "from" it finds the packages in that node_modules.
  sdkParent = pathToFileURL(path.join(path.dirname(data.sdk), "index.mjs")).href;
}

function isBare(specifier) {
  return !/^(\.{0,2}\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!sdkParent || !err || err.code !== "ERR_MODULE_NOT_FOUND" || !isBare(specifier)) throw err;
    return nextResolve(specifier, { ...context, parentURL: sdkParent });
  }
}
