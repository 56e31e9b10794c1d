import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import { auditLog } from '../audit/context';
import { decodeDocument, decodeText, type DecodedEvent } from '../audit/decode';
import { exportLines, verifyExport } from '../audit/export';
import { toFhir } from '../audit/formats/fhir';
import { PRODUCER_ROLES, type ProducerRole, Producers } from '../audit/producers';
import { type AuditRecordView, FILTERABLE, toView } from '../audit/query';
import { verifyLog, type VerifyReport } from '../audit/verify';
import type { Runtime } from '../platform/runtime';
import { withLocalRuntime } from './local';
import { Progress } from './progress';
import { startCommand } from './start';
import { usersCommands } from './users';
import { loadDemo } from './demo';

/** Rejections the CLI names one by one before it only counts them. */
const MAX_REPORTED = 20;

/** Events ingested per chain commit by the CLI. */
const INGEST_BATCH = 500;

export function main(argv: string[]): void {
  program()
    .parseAsync(argv)
    .catch((error: Error) => {
      // Exits rather than waits: a command that failed part-way (a port in use, say) may have
      // left a server listening that would keep the process alive.
      process.stderr.write(`vigil: ${error.message}\n`, () => process.exit(2));
    });
}

export function program(): Command {
  const cli = new Command('vigil')
    .description(
      'Operator tool for the local Vigil platform: audit ingest, verification, export, producers.',
    )
    .showHelpAfterError();

  cli
    .command('start')
    .description('start the whole platform locally on embedded defaults')
    .option('--port <port>', 'HTTP API port (default: PORT or 3000)', parsePort)
    .option('--invoke-port <port>', 'Lambda Invoke API port (default 3002)', parsePort)
    .action(startCommand);

  cli
    .command('ingest')
    .description('ingest audit events from a file or a directory (NDJSON, JSON, FHIR Bundle, XML)')
    .argument('<path>', 'file or directory')
    .option(
      '--producer <name>',
      'producer recorded with each event',
      `cli:${os.userInfo().username}`,
    )
    .action((target: string, opts: { producer: string }) =>
      withLocalRuntime((rt) => ingest(rt, target, opts.producer)),
    );

  cli
    .command('verify')
    .description('verify the audit log (or an export file offline); exit 0 when intact')
    .option('--file <export>', 'verify an export file instead of the local store')
    .option('--public-key <pem>', 'public key file for --file (SubjectPublicKeyInfo PEM)')
    .option('--json', 'print the full report as JSON')
    .action(verify);

  cli
    .command('export')
    .description('export audit records to standard output or a file')
    .requiredOption(
      '--format <format>',
      'fhir (R4 AuditEvent NDJSON) or ndjson (verifiable)',
      parseFormat,
    )
    .option('--filter <json>', 'filter, e.g. {"patientId":"p-1","action":"view"}', parseFilter)
    .option('--out <file>', 'write to this file instead of standard output')
    .action(exportCommand);

  usersCommands(cli);
  cli
    .command('demo')
    .description('load a synthetic hospital (clearly marked demo data) into the local platform')
    .option('--days <n>', 'days of access events', '3')
    .action((opts: { days: string }) => withLocalRuntime(() => loadDemo(Number(opts.days))));

  const producers = cli.command('producers').description('manage producer API keys');
  producers
    .command('create')
    .description('create a producer and print its API key (shown once)')
    .argument('<name>', 'lowercase letters, digits and dashes')
    .option('--role <role>', `${PRODUCER_ROLES.join(' or ')}`, 'producer')
    .action((name: string, opts: { role: ProducerRole }) =>
      withLocalRuntime(async (rt) => {
        const { apiKey, producer } = await producersOf(rt).create(name, opts.role);
        process.stdout.write(`${apiKey}\n`);
        process.stderr.write(
          `producer ${producer.name} (${producer.role}) created; the key is shown only once\n`,
        );
      }),
    );
  producers
    .command('list')
    .description('list producers')
    .action(() =>
      withLocalRuntime(async (rt) => {
        for (const p of await producersOf(rt).list()) {
          const state = p.revokedAt ? `revoked ${p.revokedAt}` : 'active';
          process.stdout.write(
            `${p.name}\t${p.role}\t${p.keyPrefix}…\tcreated ${p.createdAt}\t${state}\n`,
          );
        }
      }),
    );
  producers
    .command('revoke')
    .description('revoke a producer key at once')
    .argument('<name>')
    .action((name: string) =>
      withLocalRuntime(async (rt) => {
        await producersOf(rt).revoke(name);
        process.stderr.write(`producer ${name} revoked\n`);
      }),
    );
  return cli;
}

const producersOf = (rt: Runtime) => new Producers(rt.store, rt.config.auditTable, rt.clock);

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError('not a port');
  return port;
}

function parseFormat(value: string): 'fhir' | 'ndjson' {
  if (value !== 'fhir' && value !== 'ndjson') throw new InvalidArgumentError('use fhir or ndjson');
  return value;
}

function parseFilter(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('must be a JSON object');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError('must be a JSON object');
  }
  // The same keys as the API's filter: a misspelt one would otherwise match nothing, silently.
  const unknown = Object.keys(parsed).find((key) => !FILTERABLE.includes(key));
  if (unknown !== undefined) {
    throw new InvalidArgumentError(`cannot filter by ${unknown}; use ${FILTERABLE.join(', ')}`);
  }
  return parsed as Record<string, unknown>;
}

function filesOf(target: string): string[] {
  const stat = fs.statSync(target);
  if (!stat.isDirectory()) return [target];
  return fs
    .readdirSync(target)
    .filter((name) => /\.(ndjson|jsonl|json|xml)$/i.test(name))
    .sort()
    .map((name) => path.join(target, name));
}

async function ingest(rt: Runtime, target: string, producer: string): Promise<void> {
  const files = filesOf(target);
  const totals = { accepted: 0, duplicate: 0, rejected: 0, failed: 0 };
  const progress = new Progress('ingest');
  const stream = `cli-${producer.replace(/[^A-Za-z0-9._-]+/g, '-')}`;
  let batch: Array<{ decoded: DecodedEvent; where: string }> = [];
  let reported = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const outcomes = await auditLog().ingest(
      { source: 'cli', stream, producer },
      // The file and the event's place in it are kept with a rejection and named here.
      batch.map(({ decoded, where }, ref) => ({ ref, decoded, where })),
    );
    for (const o of outcomes) {
      totals[o.status] += 1;
      if (o.status === 'rejected' && reported < MAX_REPORTED) {
        reported += 1;
        process.stderr.write(`rejected ${batch[o.ref]?.where}: ${o.field} ${o.reason}\n`);
      }
    }
    progress.advance(batch.length);
    batch = [];
  };
  for (const file of files) {
    let n = 0;
    for await (const decoded of decodeFile(file)) {
      n += 1;
      batch.push({ decoded, where: `${file}#${n}` });
      if (batch.length >= INGEST_BATCH) await flush();
    }
  }
  await flush();
  progress.finish();
  if (totals.rejected > reported) {
    process.stderr.write(`... and ${totals.rejected - reported} more rejected (see quarantine)\n`);
  }
  process.stdout.write(`${JSON.stringify({ files: files.length, ...totals })}\n`);
  if (totals.failed > 0) process.exitCode = 1;
  void rt;
}

async function* decodeFile(file: string): AsyncIterable<DecodedEvent> {
  if (/\.(ndjson|jsonl)$/i.test(file)) {
    const lines = readline.createInterface({
      input: fs.createReadStream(file),
      crlfDelay: Infinity,
    });
    for await (const line of lines) {
      if (line.trim().length === 0) continue;
      yield* decodeText(line);
    }
    return;
  }
  const text = fs.readFileSync(file, 'utf8');
  if (/\.json$/i.test(file)) {
    try {
      yield* decodeDocument(JSON.parse(text));
      return;
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
  }
  yield* decodeText(text);
}

async function verify(opts: { file?: string; publicKey?: string; json?: boolean }): Promise<void> {
  let report: VerifyReport;
  if (opts.file) {
    if (!opts.publicKey) throw new InvalidArgumentError('--file needs --public-key');
    const key = fs.readFileSync(opts.publicKey, 'utf8');
    try {
      crypto.createPublicKey(key);
    } catch {
      throw new InvalidArgumentError(`${opts.publicKey} is not a PEM public key`);
    }
    report = await verifyExport(fs.createReadStream(opts.file, { highWaterMark: 1 << 20 }), key);
  } else {
    report = await withLocalRuntime(async (rt) => {
      const progress = new Progress('verify');
      let last = 0;
      const result = await verifyLog(
        { store: rt.store, table: rt.config.auditTable, sink: rt.sink, signer: rt.signer },
        (_stream, n) => {
          progress.advance(Math.max(0, n - last));
          last = n >= last ? n : 0;
        },
      );
      progress.finish();
      return result;
    });
  }
  printReport(report, opts.json === true);
  process.exitCode = report.ok ? 0 : 1;
}

function printReport(report: VerifyReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  for (const s of report.streams) {
    const mark = s.problems.length === 0 ? 'ok ' : 'BAD';
    process.stdout.write(
      `${mark} ${s.stream}: ${s.entries} entries, ${s.checkpoints} checkpoints, ${s.unattested} not yet signed\n`,
    );
  }
  const first = report.firstProblem;
  if (!first) {
    process.stdout.write(`intact: ${report.entries} entries in ${report.streams.length} streams\n`);
    return;
  }
  const named = first.id ? ` (record ${first.id})` : '';
  process.stdout.write(
    `TAMPERED: ${first.kind} at ${first.stream} #${first.seq}${named}: ${first.detail}\n`,
  );
}

async function exportCommand(opts: {
  format: 'fhir' | 'ndjson';
  filter?: Record<string, unknown>;
  out?: string;
}) {
  await withLocalRuntime(async (rt) => {
    // Opened here, so a path that cannot be written is an error with a message, not a crash.
    const out: NodeJS.WritableStream = opts.out
      ? fs.createWriteStream('', { fd: openForWriting(opts.out) })
      : process.stdout;
    const filter = opts.filter ? recordFilter(opts.filter) : undefined;
    const sources = {
      store: rt.store,
      table: rt.config.auditTable,
      sink: rt.sink,
      signer: rt.signer,
    };
    // Signs every stream's newest entries first: an export holds only what is signed.
    await auditLog().checkpointAll();
    const progress = new Progress('export');
    for await (const line of exportLines(
      sources,
      opts.format === 'fhir' ? (filter ?? (() => true)) : filter,
    )) {
      const text = opts.format === 'fhir' ? fhirLine(line) : line;
      if (text === undefined) continue;
      if (!out.write(`${text}\n`))
        await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      progress.advance();
    }
    if (opts.out) {
      await new Promise<void>((resolve) => out.end(() => resolve()));
      progress.finish();
    }
  });
}

function fhirLine(line: string): string | undefined {
  if (!line.startsWith('{"type":"entry"')) return undefined;
  const record = JSON.parse(line) as {
    record: {
      id: string;
      eventKey: string;
      producer: string;
      source: string;
      receivedAt: string;
      event: never;
    };
  };
  const { event, eventKey, producer, source, receivedAt } = record.record;
  return JSON.stringify(toFhir(event, { eventKey, producer, source, receivedAt }));
}

function recordFilter(filter: Record<string, unknown>): (view: AuditRecordView) => boolean {
  const from = typeof filter.from === 'string' ? Date.parse(filter.from) : undefined;
  const to = typeof filter.to === 'string' ? Date.parse(filter.to) : undefined;
  return (view) => {
    for (const [name, wanted] of Object.entries(filter)) {
      if (name === 'from' || name === 'to') continue;
      const allowed = Array.isArray(wanted) ? wanted.map(String) : [String(wanted)];
      if (!allowed.includes(String(view[name]))) return false;
    }
    const at = Date.parse(String(view.timestamp));
    return (from === undefined || at >= from) && (to === undefined || at <= to);
  };
}

export { toView };

function openForWriting(file: string): number {
  try {
    return fs.openSync(file, 'w', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new InvalidArgumentError(`cannot write ${file} (${code})`);
  }
}
