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
  DeletionPolicy?: string;
}

interface Template {
  Resources: Record<string, Resource>;
  Outputs: Record<string, unknown>;
}

const ROOT = path.resolve(__dirname, '../..');
/** esbuild bundles eleven functions; a cold CI machine needs far less than this. */
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
  'identityAuth',
  'identityUsers',
];

/** Each table, its fixed name (roles name it by ARN) and its global indexes. */
const TABLES = [
  { logicalId: 'AuditTable', name: 'vigil-ci-audit', indexes: ['gsi1', 'gsi2', 'gsi3', 'gsi4'] },
  { logicalId: 'IdentityTable', name: 'vigil-ci-identity', indexes: ['gsi1', 'gsi2'] },
];

/** Every HTTP route, the function behind it, and what API Gateway checks before calling it. */
const ROUTES: Record<string, { function: string; authorization: string }> = {
  'POST /v1/audit/events': { function: 'auditIngestHttp', authorization: 'CUSTOM' },
  'POST /v1/iam/audit/events': { function: 'auditIngestHttp', authorization: 'AWS_IAM' },
  // The read routes take a reader key or a user's session, both checked in the handler.
  'GET /v1/audit-events': { function: 'auditQuery', authorization: 'NONE' },
  'GET /v1/audit-events/{id}': { function: 'auditQuery', authorization: 'NONE' },
  'GET /v1/patients/{id}/access-report': { function: 'auditQuery', authorization: 'NONE' },
  'GET /v1/audit/quarantine': { function: 'auditQuery', authorization: 'NONE' },
  'GET /v1/audit/verify': { function: 'auditVerify', authorization: 'NONE' },
  'POST /v1/auth/login': { function: 'identityAuth', authorization: 'NONE' },
  'POST /v1/auth/mfa': { function: 'identityAuth', authorization: 'NONE' },
  'POST /v1/auth/step-up': { function: 'identityAuth', authorization: 'NONE' },
  'POST /v1/auth/logout': { function: 'identityAuth', authorization: 'NONE' },
  'GET /v1/auth/session': { function: 'identityAuth', authorization: 'NONE' },
  'POST /v1/auth/oidc': { function: 'identityAuth', authorization: 'NONE' },
  'POST /v1/auth/saml': { function: 'identityAuth', authorization: 'NONE' },
  'GET /v1/auth/saml/login': { function: 'identityAuth', authorization: 'NONE' },
  'POST /v1/auth/enrol': { function: 'identityAuth', authorization: 'NONE' },
  'GET /enrol': { function: 'identityAuth', authorization: 'NONE' },
  'GET /v1/users': { function: 'identityUsers', authorization: 'NONE' },
  'POST /v1/users': { function: 'identityUsers', authorization: 'NONE' },
  'GET /v1/users/{id}': { function: 'identityUsers', authorization: 'NONE' },
  'PUT /v1/users/{id}': { function: 'identityUsers', authorization: 'NONE' },
  'POST /v1/users/{id}/lock': { function: 'identityUsers', authorization: 'NONE' },
  'POST /v1/users/{id}/unlock': { function: 'identityUsers', authorization: 'NONE' },
  'POST /v1/users/{id}/reset-mfa': { function: 'identityUsers', authorization: 'NONE' },
  'GET /v1/users/{id}/sessions': { function: 'identityUsers', authorization: 'NONE' },
  'DELETE /v1/users/{id}/sessions/{sessionId}': {
    function: 'identityUsers',
    authorization: 'NONE',
  },
  'GET /health': { function: 'platformHealth', authorization: 'NONE' },
};

/** Settings the identity functions read, with the values a stage gets unless it sets them. */
const IDENTITY_DEFAULTS: Record<string, string> = {
  VIGIL_PUBLIC_URL: '',
  VIGIL_OIDC_ISSUER: '',
  VIGIL_OIDC_AUDIENCE: '',
  VIGIL_OIDC_JWKS_URL: '',
  VIGIL_OIDC_ROLES_CLAIM: 'groups',
  VIGIL_OIDC_ROLE_MAP: '',
  VIGIL_OIDC_TRUST_EMAIL: 'false',
  VIGIL_SAML_ENTRY_POINT: '',
  VIGIL_SAML_ISSUER: '',
  VIGIL_SAML_AUDIENCE: '',
  VIGIL_SAML_CALLBACK_URL: '',
  VIGIL_SAML_IDP_CERT: '',
  VIGIL_SAML_IDP_ISSUER: '',
  VIGIL_SAML_ALLOW_UNSOLICITED: 'false',
  VIGIL_SAML_ROLE_MAP: '',
  VIGIL_SESSION_IDLE_MINUTES: '15',
  VIGIL_SESSION_ABSOLUTE_HOURS: '12',
  VIGIL_SESSION_MAX_CONCURRENT: '3',
  VIGIL_SESSION_TOUCH_SECONDS: '5',
  VIGIL_STEP_UP_MINUTES: '5',
  VIGIL_LOCKOUT_MAX_FAILURES: '5',
  VIGIL_LOCKOUT_COOLDOWN_MINUTES: '30',
};

/** Roles name tables by ARN, built from the fixed name; the intrinsic is left for Fn::Sub. */
const TABLE_ARN = 'arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/';
const AUDIT_TABLE_ARN = `${TABLE_ARN}vigil-ci-audit`;
const IDENTITY_TABLE_ARN = `${TABLE_ARN}vigil-ci-identity`;

const run = promisify(execFile);
const lambdaId = (name: string) => `${name[0]?.toUpperCase()}${name.slice(1)}LambdaFunction`;
const functionByLambdaId = new Map(FUNCTIONS.map((name) => [lambdaId(name), name]));

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

function roleOf(functionName: string): string {
  return resource(lambdaId(functionName)).Properties.Role['Fn::GetAtt'][0];
}

/** The statements of one role's inline policies. */
function statementsOf(roleId: string): Json[] {
  const policies: Json[] = resource(roleId).Properties.Policies ?? [];
  return policies.flatMap((policy) => [policy.PolicyDocument.Statement].flat());
}

const actionsOf = (statement: Json): string[] => [statement.Action].flat();
const isTableStatement = (statement: Json) =>
  actionsOf(statement).some((action) => action.startsWith('dynamodb:'));

/** The DynamoDB actions a role's policies allow on one ARN, sorted. */
function tableActions(roleId: string, arn: string): string[] {
  return statementsOf(roleId)
    .filter((statement) => [statement.Resource].flat().some((r: Json) => r?.['Fn::Sub'] === arn))
    .flatMap(actionsOf)
    .filter((action) => action.startsWith('dynamodb:'))
    .sort();
}

function httpRoutes(): Json[] {
  return resourcesOfType('AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties);
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

  it.each(TABLES)(
    'keeps $logicalId on demand, recoverable, under the data key, and past the stack',
    ({ logicalId, name }) => {
      const table = resource(logicalId);
      const properties = table.Properties;

      expect(table.DeletionPolicy).toBe('Retain');
      expect(properties.TableName).toBe(name);
      expect(properties.BillingMode).toBe('PAY_PER_REQUEST');
      expect(properties.PointInTimeRecoverySpecification).toEqual({
        PointInTimeRecoveryEnabled: true,
      });
      expect(properties.SSESpecification).toEqual({
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': ['DataKey', 'Arn'] },
      });
      expect(properties.DeletionProtectionEnabled).toBe(true);
      expect(properties.TimeToLiveSpecification).toEqual({
        AttributeName: 'expiresAt',
        Enabled: true,
      });
    },
  );

  it('encrypts the tables under a customer-managed key that rotates', () => {
    expect(resource('DataKey')).toMatchObject({
      Type: 'AWS::KMS::Key',
      Properties: { KeySpec: 'SYMMETRIC_DEFAULT', EnableKeyRotation: true },
    });
  });

  it.each(TABLES)(
    'indexes $logicalId with string keys and global indexes that project every attribute',
    ({ logicalId, indexes }) => {
      const properties = resource(logicalId).Properties;
      const declared: Json[] = properties.GlobalSecondaryIndexes;
      const attributes = ['pk', 'sk', ...indexes.flatMap((index) => [`${index}pk`, `${index}sk`])];

      expect(properties.KeySchema).toEqual([
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ]);
      expect(properties.AttributeDefinitions).toEqual(
        attributes.map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
      );
      expect(declared.map((index) => index.IndexName)).toEqual(indexes);
      for (const index of declared) {
        expect(index.Projection).toEqual({ ProjectionType: 'ALL' });
        expect(index.KeySchema).toEqual([
          { AttributeName: `${index.IndexName}pk`, KeyType: 'HASH' },
          { AttributeName: `${index.IndexName}sk`, KeyType: 'RANGE' },
        ]);
      }
    },
  );

  it('runs sign-in and user administration from their handlers, with memory for scrypt', () => {
    expect(resource(lambdaId('identityAuth')).Properties).toMatchObject({
      Handler: 'functions/identity/handlers/auth.handler',
      MemorySize: 1024,
    });
    expect(resource(lambdaId('identityUsers')).Properties.Handler).toBe(
      'functions/identity/handlers/users.handler',
    );
  });

  it('gives every function the identity table and the identity settings, defaulted', () => {
    for (const name of FUNCTIONS) {
      expect(resource(lambdaId(name)).Properties.Environment.Variables).toMatchObject({
        VIGIL_IDENTITY_TABLE: { Ref: 'IdentityTable' },
        ...IDENTITY_DEFAULTS,
      });
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

  it('names every table a role may touch by its fixed ARN', () => {
    const allowed = TABLES.flatMap(({ name }) => [
      `${TABLE_ARN}${name}`,
      `${TABLE_ARN}${name}/index/*`,
    ]);
    const resources = iamStatements()
      .filter(isTableStatement)
      .flatMap((statement) => [statement.Resource].flat());

    expect(resources.length).toBeGreaterThan(0);
    for (const arn of resources) expect(allowed).toContain(arn?.['Fn::Sub']);
  });

  it('grants key use through the key policies only', () => {
    const kms = iamStatements().filter((statement) =>
      actionsOf(statement).some((action) => /^kms:/i.test(action)),
    );

    expect(kms).toEqual([]);
  });

  it('lets every role that touches a table use the data key, through DynamoDB only', () => {
    const statement = resource('DataKey').Properties.KeyPolicy.Statement.find(
      (candidate: Json) => candidate.Sid === 'FunctionsUseTableThroughDynamoDb',
    );
    const tableRoles = FUNCTIONS.map(roleOf).filter((role) =>
      statementsOf(role).some(isTableStatement),
    );

    expect(tableRoles).toEqual(expect.arrayContaining(['IdentityAuthRole', 'IdentityUsersRole']));
    expect(statement.Principal.AWS).toEqual(
      expect.arrayContaining(tableRoles.map((role) => ({ 'Fn::GetAtt': [role, 'Arn'] }))),
    );
    expect(statement.Condition).toEqual({
      StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'dynamodb.${AWS::Region}.amazonaws.com' } },
    });
  });

  it('lets only sign-in seal and open authenticator seeds with the data key', () => {
    const sealing = resource('DataKey').Properties.KeyPolicy.Statement.filter((statement: Json) =>
      actionsOf(statement).some((action) => action === 'kms:Encrypt'),
    );
    const direct = sealing.filter(
      (statement: Json) => !statement.Condition?.StringEquals?.['kms:ViaService'],
    );

    expect(direct).toEqual([
      expect.objectContaining({
        Principal: { AWS: [{ 'Fn::GetAtt': ['IdentityAuthRole', 'Arn'] }] },
        Action: ['kms:Encrypt', 'kms:Decrypt'],
        Condition: { StringEquals: { 'kms:EncryptionContext:purpose': 'totp-secret' } },
      }),
    ]);
  });

  it.each(['identityAuth', 'identityUsers'])(
    'lets %s manage identities and append to the audit log, and nothing else',
    (name) => {
      const role = roleOf(name);
      const identityActions = [
        'dynamodb:BatchGetItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ];
      const auditActions = [
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ];
      const others = statementsOf(role).filter((statement) => !isTableStatement(statement));

      expect(tableActions(role, IDENTITY_TABLE_ARN)).toEqual(identityActions);
      expect(tableActions(role, `${IDENTITY_TABLE_ARN}/index/*`)).toEqual(identityActions);
      expect(tableActions(role, AUDIT_TABLE_ARN)).toEqual(auditActions);
      expect(tableActions(role, `${AUDIT_TABLE_ARN}/index/*`)).toEqual(auditActions);
      expect(others).toEqual([
        {
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: { 'Fn::GetAtt': [`${role.replace(/Role$/, '')}LogGroup`, 'Arn'] },
        },
      ]);
    },
  );

  it.each(['auditQuery', 'auditVerify'])(
    'lets %s check a session and read API keys, but not list identities',
    (name) => {
      const role = roleOf(name);

      expect(tableActions(role, IDENTITY_TABLE_ARN)).toEqual([
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]);
      expect(tableActions(role, `${IDENTITY_TABLE_ARN}/index/*`)).toEqual([]);
      expect(tableActions(role, AUDIT_TABLE_ARN)).toContain('dynamodb:GetItem');
    },
  );

  it('routes each request to the function that serves it', () => {
    const routes = Object.fromEntries(
      httpRoutes().map((route) => {
        const integrationId: string = route.Target['Fn::Join'][1][1].Ref;
        const lambda: string = resource(integrationId).Properties.IntegrationUri['Fn::GetAtt'][0];
        return [
          route.RouteKey,
          {
            function: functionByLambdaId.get(lambda) ?? lambda,
            authorization: route.AuthorizationType ?? 'NONE',
          },
        ];
      }),
    );

    expect(routes).toEqual(ROUTES);
  });

  it('checks the producer key at the gateway on ingest only', () => {
    const authorized = httpRoutes().filter((route) => route.AuthorizerId);
    const authorizer = resource('HttpApiAuthorizerProducerKey').Properties;

    expect(authorized.map((route) => route.RouteKey)).toEqual(['POST /v1/audit/events']);
    expect(authorized[0]?.AuthorizerId).toEqual({ Ref: 'HttpApiAuthorizerProducerKey' });
    expect(authorizer).toMatchObject({
      AuthorizerType: 'REQUEST',
      IdentitySource: ['$request.header.x-api-key'],
      AuthorizerResultTtlInSeconds: 0,
    });
    expect(referencesIn(authorizer.AuthorizerUri)).toContain(lambdaId('producerAuthorizer'));
  });

  it('lets the console call every route method with its session cookie', () => {
    const [condition, cors] = resource('HttpApi').Properties.CorsConfiguration['Fn::If'];
    const methods = new Set(Object.keys(ROUTES).map((key) => key.split(' ')[0]));

    expect(condition).toBe('HasCorsOrigins');
    expect(cors.AllowMethods).toEqual(expect.arrayContaining([...methods]));
    expect(cors.AllowCredentials).toBe(true);
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
