#!/usr/bin/env node
// The operator's CLI. Sources are TypeScript, loaded through tsx so no build step is needed.
// Locally Vigil runs on Node 20 by design (Lambda runs Node 22); the SDK's notice about its
// future Node support would otherwise open every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
require('tsx/cjs/api').register();
require('../functions/cli/main.ts').main(process.argv);
