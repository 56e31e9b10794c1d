import path from 'node:path';

/**
 * Configuration is read once from the environment, typed, and fails fast naming the
 * missing variable. Nothing else in Vigil reads process.env.
 */
export type AdapterMode = 'aws' | 'local';

export interface Config {
  adapters: AdapterMode;
  stage: string;
  auditTable: string;
  identityTable: string;
  /** Where people reach Vigil: enrolment links point here. */
  publicUrl: string;
  /** Local only: the embedded DynamoDB-compatible server. */
  dynamoEndpoint?: string;
  region: string;
  dataDir: string;
  signingKeyId?: string;
  dataKeyId?: string;
  logGroupPrefix: string;
  topicArns: { alerts?: string; breach?: string; drills?: string };
  corsOrigins: string[];
  version: string;
}

export class ConfigError extends Error {
  constructor(variable: string, reason: string) {
    super(`configuration: ${variable} ${reason}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigError(name, 'is required when VIGIL_ADAPTERS=aws');
  return value;
}

export function readConfig(env: Env = process.env): Config {
  const adapters = (env.VIGIL_ADAPTERS ?? 'local') as AdapterMode;
  if (adapters !== 'aws' && adapters !== 'local') {
    throw new ConfigError('VIGIL_ADAPTERS', `must be "aws" or "local", not "${adapters}"`);
  }
  const stage = env.VIGIL_STAGE ?? 'local';
  const aws = adapters === 'aws';

  return {
    adapters,
    stage,
    auditTable: aws ? required(env, 'VIGIL_AUDIT_TABLE') : (env.VIGIL_AUDIT_TABLE ?? 'vigil-audit'),
    identityTable: aws
      ? required(env, 'VIGIL_IDENTITY_TABLE')
      : (env.VIGIL_IDENTITY_TABLE ?? 'vigil-identity'),
    publicUrl: (env.VIGIL_PUBLIC_URL || `http://127.0.0.1:${env.PORT ?? 3000}`).replace(/\/$/, ''),
    dynamoEndpoint: aws ? undefined : env.VIGIL_DYNAMODB_ENDPOINT,
    region: env.AWS_REGION ?? 'us-east-1',
    dataDir: path.resolve(env.VIGIL_DATA_DIR ?? '.vigil'),
    signingKeyId: aws ? required(env, 'VIGIL_SIGNING_KEY_ID') : undefined,
    dataKeyId: aws ? required(env, 'VIGIL_DATA_KEY_ID') : undefined,
    logGroupPrefix: env.VIGIL_LOG_GROUP_PREFIX ?? `/vigil/${stage}`,
    topicArns: {
      alerts: env.VIGIL_TOPIC_ALERTS_ARN,
      breach: env.VIGIL_TOPIC_BREACH_ARN,
      drills: env.VIGIL_TOPIC_DRILLS_ARN,
    },
    corsOrigins: (env.VIGIL_CORS_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
    version: env.VIGIL_VERSION ?? packageVersion(),
  };
}

function packageVersion(): string {
  // Bundled on AWS, where package.json is not shipped; the version is then set at build time.
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional at run time
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
