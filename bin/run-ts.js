#!/usr/bin/env node
// Runs a TypeScript entry point through tsx, resolved from this package rather than the caller's cwd.
const path = require('node:path');
require('tsx/cjs/api').register();
const [entry, ...rest] = process.argv.slice(2);
process.argv = [process.argv[0], entry, ...rest];
require(path.resolve(entry));
