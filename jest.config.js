// Unit tests run in-process; integration tests start an embedded DynamoDB-compatible
// server themselves. middy ships ESM only, so it is transformed like our own sources.
const transform = { '^.+\\.(t|j|mj)sx?$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const transformIgnorePatterns = ['/node_modules/(?!(@middy)/)'];
const common = { transform, transformIgnorePatterns, testEnvironment: 'node' };

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      testTimeout: 60_000,
    },
  ],
};
