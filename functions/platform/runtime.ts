import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient } from '@aws-sdk/client-sns';
import { type Config, ConfigError, readConfig } from './config';
import { createLogger, type Log } from './logger';
import {
  type Clock,
  type LogSink,
  type Notifier,
  type Sealer,
  type Signer,
  type Store,
  systemClock,
} from './ports';
import { DynamoStore } from './store/dynamo';
import { FileLogSink } from './logsink/file';
import { CloudWatchLogSink } from './logsink/cloudwatch';
import { LedgerNotifier } from './notify/ledger';
import { SnsNotifier } from './notify/sns';
import { KmsSigner } from './keys/kms';
import { loadLocalDataKey, loadLocalSigner } from './keys/local-keys';
import { KmsSealer, LocalSealer } from './keys/sealers';

/** Everything a handler needs, built once per process from the configuration. */
export interface Runtime {
  config: Config;
  log: Log;
  clock: Clock;
  store: Store;
  signer: Signer;
  sealer: Sealer;
  sink: LogSink;
  notifier: Notifier;
}

let current: Runtime | undefined;

/** The process-wide runtime; Lambda reuses it across invocations of a warm container. */
export function runtime(): Runtime {
  current ??= buildRuntime(readConfig());
  return current;
}

/** For tests and the local runner: replace (or drop, with undefined) the process runtime. */
export function setRuntime(next: Runtime | undefined): void {
  current = next;
}

/** The only place that chooses adapters: the domain never asks where it runs. */
export function buildRuntime(config: Config, log: Log = createLogger()): Runtime {
  return config.adapters === 'aws' ? awsRuntime(config, log) : localRuntime(config, log);
}

/** Shared by both modes: the document client settings the store relies on. */
function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
}

function awsRuntime(config: Config, log: Log): Runtime {
  const region = config.region;
  const store = new DynamoStore(documentClient(new DynamoDBClient({ region })));
  const kms = new KMSClient({ region });
  const signer = new KmsSigner({ client: kms, keyId: config.signingKeyId as string });
  const sealer = new KmsSealer(kms, config.dataKeyId as string);
  const sink = new CloudWatchLogSink({
    client: new CloudWatchLogsClient({ region }),
    logGroupPrefix: config.logGroupPrefix,
    streamName: `${config.stage}-${process.env.AWS_LAMBDA_LOG_STREAM_NAME ?? 'vigil'}`.replace(
      /[^\w.-]/g,
      '-',
    ),
    retentionDays: 2192,
    logger: log,
  });
  const notifier = new SnsNotifier({
    client: new SNSClient({ region }),
    topicArns: {
      alerts: config.topicArns.alerts ?? '',
      breach: config.topicArns.breach ?? '',
      drills: config.topicArns.drills ?? '',
    },
    logger: log,
  });
  return { config, log, clock: systemClock, store, signer, sealer, sink, notifier };
}

function localRuntime(config: Config, log: Log): Runtime {
  if (!config.dynamoEndpoint) {
    throw new ConfigError(
      'VIGIL_DYNAMODB_ENDPOINT',
      'is not set: start the platform with `npm start`, which runs the embedded store',
    );
  }
  const client = new DynamoDBClient({
    region: config.region,
    endpoint: config.dynamoEndpoint,
    // The embedded server accepts any credentials; these are not secrets.
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    config,
    log,
    clock: systemClock,
    store: new DynamoStore(documentClient(client)),
    signer: loadLocalSigner(path.join(config.dataDir, 'keys')),
    sealer: new LocalSealer(loadLocalDataKey(path.join(config.dataDir, 'keys'))),
    sink: new FileLogSink(path.join(config.dataDir, 'logs')),
    notifier: new LedgerNotifier(config.dataDir),
  };
}
