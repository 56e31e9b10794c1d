#!/usr/bin/env node
// Runs a TypeScript entry point through tsx, resolved from this package rather than the caller's cwd.
const path = require('node:path');
// Locally Vigil runs on Node 20 by design (Lambda runs Node 22); the SDK's notice about its
// future Node support would otherwise open every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
require('tsx/cjs/api').register();
const [entry, ...rest] = process.argv.slice(2);
process.argv = [process.argv[0], entry, ...rest];
require(path.resolve(entry));
