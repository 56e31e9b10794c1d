import type { Item, LogSink, Signer, Store } from '../platform/ports';
import { type Checkpoint, readCheckpoints } from './chain/checkpoints';
import { type StreamReport, type VerifiableEntry, verifyStream } from './chain/verifier';
import { headKey, listStreams } from './records';
import { type AuditRecordView, toView } from './query';
import { summarize, type VerifyReport } from './verify';

export const EXPORT_TYPE = 'vigil-audit-export';

export interface ExportSources {
  store: Store;
  table: string;
  sink: LogSink;
  signer: Signer;
}

/**
 * The verifiable export, one JSON object a line: a header, the signed checkpoints, then each
 * stream's head and its entries in order. Each entry carries its canonical body verbatim as
 * the last member, so a verifier can hash the exact bytes without re-encoding them.
 */
export async function* exportLines(
  sources: ExportSources,
  filter?: (view: AuditRecordView) => boolean,
): AsyncIterable<string> {
  yield JSON.stringify({
    type: EXPORT_TYPE,
    version: 1,
    exportedAt: new Date().toISOString(),
    filtered: filter !== undefined,
    publicKey: await sources.signer.publicKeyPem(),
  });
  const checkpoints = await readCheckpoints(sources.sink);
  for (const list of checkpoints.values()) {
    for (const checkpoint of list) yield JSON.stringify({ type: 'checkpoint', ...checkpoint });
  }
  for await (const stream of listStreams(sources.store, sources.table)) {
    const head = await sources.store.get(sources.table, headKey(stream), true);
    yield JSON.stringify({ type: 'head', stream, seq: Number(head?.seq ?? 0) });
    for await (const item of sources.store.query(sources.table, {
      index: 'gsi1',
      partition: ['gsi1pk', `S#${stream}`],
    })) {
      if (filter && !filter(toView(item))) continue;
      yield entryLine(item);
    }
  }
}

function entryLine(item: Item): string {
  const meta = JSON.stringify({
    type: 'entry',
    stream: item.stream,
    seq: item.seq,
    id: String(item.pk).slice(2),
    hash: item.hash,
    prevHash: item.prevHash,
  });
  return `${meta.slice(0, -1)},"record":${String(item.body)}}`;
}

const RECORD_MARK = ',"record":';

interface EntryMeta {
  type: 'entry';
  stream: string;
  seq: number;
  id: string;
  hash: string;
  prevHash: string;
}

/** Parses an entry line, taking the record's bytes as written rather than re-encoding them. */
export function parseEntryLine(line: string): VerifiableEntry & { stream: string } {
  const mark = line.indexOf(RECORD_MARK);
  if (mark < 0 || !line.endsWith('}')) throw new Error('an entry line has no record');
  const meta = JSON.parse(`${line.slice(0, mark)}}`) as EntryMeta;
  return {
    stream: meta.stream,
    seq: meta.seq,
    id: meta.id,
    hash: meta.hash,
    prevHash: meta.prevHash,
    body: line.slice(mark + RECORD_MARK.length, -1),
  };
}

/**
 * Verifies an export offline with nothing but the signer's public key. The key inside the
 * file is ignored: whoever could alter the file could replace that key too.
 */
export async function verifyExport(
  lines: AsyncIterable<string>,
  publicKeyPem: string,
): Promise<VerifyReport> {
  const iterator = lines[Symbol.asyncIterator]();
  const checkpoints = new Map<string, Checkpoint[]>();
  const reports: StreamReport[] = [];
  let line = await nextLine(iterator);

  const header = line ? (JSON.parse(line) as { type?: string; filtered?: boolean }) : undefined;
  if (header?.type !== EXPORT_TYPE) throw new Error('not a Vigil audit export');
  if (header.filtered) throw new Error('a filtered export cannot be verified as a whole chain');
  line = await nextLine(iterator);

  while (line !== undefined) {
    const record = line.startsWith('{"type":"entry"')
      ? undefined
      : (JSON.parse(line) as Record<string, unknown>);
    if (record?.type === 'checkpoint') {
      const { type: _type, ...checkpoint } = record as unknown as Checkpoint & { type: string };
      checkpoints.set(checkpoint.stream, [
        ...(checkpoints.get(checkpoint.stream) ?? []),
        checkpoint,
      ]);
      line = await nextLine(iterator);
      continue;
    }
    if (record?.type !== 'head') throw new Error('an entry appears before its stream head');
    const stream = String(record.stream);
    const state = { line: await nextLine(iterator) };
    async function* entries(): AsyncIterable<VerifiableEntry> {
      while (state.line !== undefined && state.line.startsWith('{"type":"entry"')) {
        const entry = parseEntryLine(state.line);
        if (entry.stream !== stream) break;
        yield entry;
        state.line = await nextLine(iterator);
      }
    }
    reports.push(
      await verifyStream(stream, entries(), checkpoints.get(stream) ?? [], publicKeyPem, {
        headSeq: Number(record.seq),
      }),
    );
    checkpoints.delete(stream);
    line = state.line;
  }
  // Checkpoints whose stream has no head in the file: the whole stream was removed.
  for (const [stream, list] of checkpoints) {
    reports.push(await verifyStream(stream, emptyEntries(), list, publicKeyPem));
  }
  return summarize(reports);
}

async function nextLine(iterator: AsyncIterator<string>): Promise<string | undefined> {
  for (;;) {
    const next = await iterator.next();
    if (next.done) return undefined;
    if (next.value.trim().length > 0) return next.value;
  }
}

async function* emptyEntries(): AsyncIterable<VerifiableEntry> {}

export { readCheckpoints };
