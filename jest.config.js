// Unit tests run in-process; integration tests start an embedded DynamoDB-compatible
// server themselves. middy, jose and the TOTP libraries ship ESM only, so they are transformed
// like our own sources.
// Tests run on the machine's Node.js 20; the functions run on Lambda's nodejs22.x, where the
// AWS SDK's notice about Node.js 20 does not apply. Workers inherit this environment.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const transform = { '^.+\\.(t|j|mj)sx?$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const transformIgnorePatterns = ['/node_modules/(?!(@middy|jose|@scure|@noble|@otplib|otplib)/)'];
const common = { transform, transformIgnorePatterns, testEnvironment: 'node' };

module.exports = {
  // Integration tests start servers and hash passwords with scrypt; 5 s is too tight for them.
  testTimeout: 60_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
  ],
};
