import fs from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';

/**
 * What the local runner needs from serverless.yml: functions, their HTTP routes, schedules
 * and authorizers, and the DynamoDB tables. Reading the same file that deploys to AWS keeps
 * the local platform and the deployed one from drifting apart.
 */
export interface HttpRoute {
  functionName: string;
  method: string;
  path: string;
  authorizer?: { kind: 'lambda'; functionName: string } | { kind: 'iam' };
}

export interface Schedule {
  functionName: string;
  rate: string;
  everyMs: number;
}

export interface FunctionDefinition {
  name: string;
  /** `path/to/module.exportName`, relative to the project root. */
  handler: string;
}

export interface TableDefinition {
  logicalId: string;
  properties: Record<string, unknown>;
}

export interface Definition {
  functions: FunctionDefinition[];
  routes: HttpRoute[];
  schedules: Schedule[];
  tables: TableDefinition[];
}

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- YAML

export function loadDefinition(root: string): Definition {
  const text = fs.readFileSync(path.join(root, 'serverless.yml'), 'utf8');
  const doc = yaml.load(text) as Doc;
  const authorizers: Doc = doc.provider?.httpApi?.authorizers ?? {};
  const functions: FunctionDefinition[] = [];
  const routes: HttpRoute[] = [];
  const schedules: Schedule[] = [];

  for (const [name, fn] of Object.entries<Doc>(doc.functions ?? {})) {
    functions.push({ name, handler: fn.handler });
    for (const event of (fn.events ?? []) as Doc[]) {
      if (event.httpApi) routes.push(toRoute(name, event.httpApi, authorizers));
      if (event.schedule) schedules.push(toSchedule(name, event.schedule));
    }
  }

  const tables = Object.entries<Doc>(doc.resources?.Resources ?? {})
    .filter(([, resource]) => resource.Type === 'AWS::DynamoDB::Table')
    .map(([logicalId, resource]) => ({ logicalId, properties: resource.Properties as Doc }));

  return { functions, routes, schedules, tables };
}

function toRoute(functionName: string, httpApi: Doc, authorizers: Doc): HttpRoute {
  const route: HttpRoute = {
    functionName,
    method: String(httpApi.method).toUpperCase(),
    path: String(httpApi.path),
  };
  const authorizer = httpApi.authorizer as Doc | undefined;
  if (authorizer?.type === 'aws_iam') route.authorizer = { kind: 'iam' };
  else if (authorizer?.name) {
    const configured = authorizers[authorizer.name] as Doc | undefined;
    if (!configured?.functionName) {
      throw new Error(`serverless.yml: authorizer ${authorizer.name} has no functionName`);
    }
    route.authorizer = { kind: 'lambda', functionName: configured.functionName };
  }
  return route;
}

const UNITS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

function toSchedule(functionName: string, schedule: Doc | string): Schedule {
  const rate = typeof schedule === 'string' ? schedule : String(schedule.rate);
  const match = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(rate);
  if (!match) {
    throw new Error(
      `serverless.yml: ${functionName} schedule ${rate} is not a rate(...) expression`,
    );
  }
  return { functionName, rate, everyMs: Number(match[1]) * (UNITS[match[2] as string] ?? 0) };
}
