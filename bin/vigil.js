#!/usr/bin/env node
// The operator's CLI. Sources are TypeScript, loaded through tsx so no build step is needed.
require('tsx/cjs/api').register();
require('../functions/cli/main.ts').main(process.argv);
