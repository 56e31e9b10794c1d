import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Packages the service as a deployment would, offline, and reads the CloudFormation template
 * it produced: what reaches AWS is checked, not the YAML that describes it.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- CloudFormation JSON; the assertions check its shape
type Json = any;

interface Resource {
  Type: string;
  Properties?: Json;
  DependsOn?: string | string[];
}

interface Template {
  Resources: Record<string, Resource>;
  Outputs: Record<string, unknown>;
}

const ROOT = path.resolve(__dirname, '../..');
/** esbuild bundles nine functions; a cold CI machine needs far less than this. */
const PACKAGE_TIMEOUT_MS = 180_000;
const MAX_ZIP_BYTES = 1024 * 1024;
/** Six years, in one of the values CloudWatch Logs accepts. */
const RETENTION_DAYS = 2192;

const FUNCTIONS = [
  'auditIngestHttp',
  'auditIngestSqs',
  'auditIngestKinesis',
  'auditIngestLogs',
  'auditQuery',
  'auditVerify',
  'auditCheckpoint',
  'producerAuthorizer',
  'platformHealth',
];

const run = promisify(execFile);
const lambdaId = (name: string) => `${name[0]?.toUpperCase()}${name.slice(1)}LambdaFunction`;

/** The process environment without AWS credentials: packaging must need none. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_EC2_METADATA_DISABLED: 'true' };
  for (const name of [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'AWS_DEFAULT_PROFILE',
  ]) {
    delete env[name];
  }
  return env;
}

let packageDir: string;
let template: Template;

async function packageService(dir: string): Promise<void> {
  const serverless = path.join(ROOT, 'node_modules', '.bin', 'serverless');
  try {
    await run(serverless, ['package', '--stage', 'ci', '--package', dir], {
      cwd: ROOT,
      env: offlineEnv(),
      timeout: PACKAGE_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    // osls prints the cause on stdout; the error itself names only the command.
    const { stdout = '' } = error as { stdout?: string };
    throw new Error(`serverless package failed:\n${stdout}`, { cause: error });
  }
}

beforeAll(async () => {
  packageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-package-'));
  await packageService(packageDir);
  const file = path.join(packageDir, 'cloudformation-template-update-stack.json');
  template = JSON.parse(fs.readFileSync(file, 'utf8')) as Template;
}, PACKAGE_TIMEOUT_MS + 10_000);

afterAll(() => {
  fs.rmSync(packageDir, { recursive: true, force: true });
});

function resource(logicalId: string): Resource {
  const found = template.Resources[logicalId];
  if (!found) throw new Error(`the template has no resource ${logicalId}`);
  return found;
}

function resourcesOfType(type: string): Array<[string, Resource]> {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

function eventSourceMapping(sourceLogicalId: string): Json {
  const mappings = resourcesOfType('AWS::Lambda::EventSourceMapping').filter(
    ([, r]) => r.Properties.EventSourceArn?.['Fn::GetAtt']?.[0] === sourceLogicalId,
  );
  expect(mappings).toHaveLength(1);
  return mappings[0]?.[1].Properties;
}

/** Every statement of every IAM policy in the template; key policies are not IAM policies. */
function iamStatements(): Json[] {
  const documents: Json[] = [];
  for (const [, role] of resourcesOfType('AWS::IAM::Role')) {
    for (const policy of role.Properties.Policies ?? []) documents.push(policy.PolicyDocument);
  }
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const [, policy] of resourcesOfType(type))
      documents.push(policy.Properties.PolicyDocument);
  }
  return documents.flatMap((document) => [document.Statement].flat());
}

/** Logical ids a value points at through Ref, Fn::GetAtt or Fn::Sub. */
function referencesIn(value: Json, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) referencesIn(item, found);
  } else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries<Json>(value)) {
      if (key === 'Ref' && typeof inner === 'string') found.add(inner);
      else if (key === 'Fn::GetAtt') found.add(String([inner].flat()[0]).split('.')[0] as string);
      else if (key === 'Fn::Sub') {
        const text: string = Array.isArray(inner) ? inner[0] : inner;
        for (const [, name] of text.matchAll(/\$\{([^}!.]+)/g)) found.add(name as string);
        referencesIn(inner, found);
      } else referencesIn(inner, found);
    }
  }
  return found;
}

describe('serverless package', () => {
  it('gives each function the nodejs22.x runtime on arm64 and a role of its own', () => {
    const roles = FUNCTIONS.map((name) => {
      const properties = resource(lambdaId(name)).Properties;
      expect(properties.Runtime).toBe('nodejs22.x');
      expect(properties.Architectures).toEqual(['arm64']);

      const roleId: string = properties.Role['Fn::GetAtt'][0];
      expect(resource(roleId).Type).toBe('AWS::IAM::Role');
      return roleId;
    });

    expect(new Set(roles).size).toBe(FUNCTIONS.length);
  });

  it('stores audit records on demand, recoverable, under the customer-managed data key', () => {
    const table = resource('AuditTable').Properties;

    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.SSESpecification).toMatchObject({ SSEEnabled: true, SSEType: 'KMS' });
    const keyId: string = table.SSESpecification.KMSMasterKeyId['Fn::GetAtt'][0];
    expect(resource(keyId).Type).toBe('AWS::KMS::Key');
    expect(resource(keyId).Properties.EnableKeyRotation).toBe(true);
    expect(table.DeletionProtectionEnabled).toBe(true);
  });

  it('indexes the table with four global indexes that project every attribute', () => {
    const indexes: Json[] = resource('AuditTable').Properties.GlobalSecondaryIndexes;

    expect(indexes.map((index) => index.IndexName)).toEqual(['gsi1', 'gsi2', 'gsi3', 'gsi4']);
    for (const index of indexes) {
      expect(index.Projection).toEqual({ ProjectionType: 'ALL' });
      expect(index.KeySchema).toEqual([
        { AttributeName: `${index.IndexName}pk`, KeyType: 'HASH' },
        { AttributeName: `${index.IndexName}sk`, KeyType: 'RANGE' },
      ]);
    }
  });

  it('signs checkpoints with an ECDSA P-256 key', () => {
    expect(resource('SigningKey').Properties).toMatchObject({
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
    });
  });

  it('keeps every log group for six years', () => {
    const groups = resourcesOfType('AWS::Logs::LogGroup');
    const names = groups.map(([, group]) => group.Properties.LogGroupName);

    expect(names).toEqual(
      expect.arrayContaining(['/vigil/ci/audit-mirror', '/vigil/ci/checkpoints']),
    );
    for (const name of FUNCTIONS) expect(names).toContain(`/aws/lambda/vigil-ci-${name}`);
    for (const [, group] of groups) expect(group.Properties.RetentionInDays).toBe(RETENTION_DAYS);
  });

  it('reports partial batch failures from the queue', () => {
    const mapping = eventSourceMapping('AuditQueue');

    expect(mapping.BatchSize).toBe(10);
    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
  });

  it('retries the stream a bounded number of times, then records the batch as failed', () => {
    const mapping = eventSourceMapping('AuditStream');

    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(mapping.MaximumRetryAttempts).toBe(10);
    expect(mapping.BisectBatchOnFunctionError).toBe(true);
    expect(mapping.DestinationConfig.OnFailure.Destination).toEqual({
      'Fn::GetAtt': ['AuditDeadLetterQueue', 'Arn'],
    });
  });

  it('moves a message that keeps failing to the dead-letter queue', () => {
    const queue = resource('AuditQueue').Properties;
    const timeout: number = resource(lambdaId('auditIngestSqs')).Properties.Timeout;

    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': ['AuditDeadLetterQueue', 'Arn'] },
      maxReceiveCount: 5,
    });
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout);
    expect(resource('AuditDeadLetterQueue').Properties.MessageRetentionPeriod).toBe(1_209_600);
  });

  it('grants no table or key action on every resource', () => {
    const statements = iamStatements();
    const sensitive = statements.filter((statement) => {
      const actions: string[] = [statement.Action].flat();
      const resources: unknown[] = [statement.Resource].flat();
      return (
        resources.includes('*') &&
        actions.some((action) => /^(dynamodb|kms):/i.test(action) || action === '*')
      );
    });

    expect(statements.length).toBeGreaterThan(FUNCTIONS.length);
    expect(sensitive).toEqual([]);
  });

  it('checks a producer key or a SigV4 signature on every route but the health check', () => {
    const routes = Object.fromEntries(
      resourcesOfType('AWS::ApiGatewayV2::Route').map(([, route]) => [
        route.Properties.RouteKey,
        route.Properties.AuthorizationType ?? 'NONE',
      ]),
    );

    expect(routes).toEqual({
      'POST /v1/audit/events': 'CUSTOM',
      'POST /v1/iam/audit/events': 'AWS_IAM',
      'GET /v1/audit-events': 'CUSTOM',
      'GET /v1/audit-events/{id}': 'CUSTOM',
      'GET /v1/patients/{id}/access-report': 'CUSTOM',
      'GET /v1/audit/quarantine': 'CUSTOM',
      'GET /v1/audit/verify': 'CUSTOM',
      'GET /health': 'NONE',
    });
    expect(resource('HttpApiAuthorizerProducerKey').Properties).toMatchObject({
      IdentitySource: ['$request.header.x-api-key'],
      AuthorizerResultTtlInSeconds: 0,
    });
  });

  it('writes checkpoints every minute', () => {
    const rules = resourcesOfType('AWS::Events::Rule').filter(([, rule]) =>
      rule.Properties.Targets.some(
        (target: Json) => target.Arn['Fn::GetAtt']?.[0] === lambdaId('auditCheckpoint'),
      ),
    );

    expect(rules.map(([, rule]) => rule.Properties.ScheduleExpression)).toEqual(['rate(1 minute)']);
  });

  it('has no dependency cycle, which CloudFormation would refuse', () => {
    const edges = new Map<string, string[]>();
    for (const [id, r] of Object.entries(template.Resources)) {
      const targets = [...referencesIn(r.Properties), ...[r.DependsOn ?? []].flat()];
      edges.set(
        id,
        targets.filter((target) => target in template.Resources),
      );
    }
    const state = new Map<string, 'visiting' | 'done'>();
    const cycle: string[] = [];
    const visit = (id: string, trail: string[]): boolean => {
      if (state.get(id) === 'done') return false;
      if (state.get(id) === 'visiting') {
        cycle.push(...trail.slice(trail.indexOf(id)), id);
        return true;
      }
      state.set(id, 'visiting');
      const found = (edges.get(id) ?? []).some((next) => visit(next, [...trail, id]));
      state.set(id, 'done');
      return found;
    };

    for (const id of edges.keys()) if (visit(id, [])) break;
    expect(cycle).toEqual([]);
  });

  it('publishes the outputs operators and producers need', () => {
    expect(Object.keys(template.Outputs)).toEqual(
      expect.arrayContaining(['HttpApiUrl', 'AuditQueueUrl', 'AuditStreamName', 'SigningKeyArn']),
    );
  });

  it('zips each function under 1 MB', () => {
    for (const name of FUNCTIONS) {
      const zip = path.join(packageDir, `${name}.zip`);
      expect(fs.statSync(zip).size).toBeLessThan(MAX_ZIP_BYTES);
    }
  });
});
