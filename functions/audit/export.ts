import type { Item, LogSink, Signer, Store } from '../platform/ports';
import { type Checkpoint, readCheckpoints } from './chain/checkpoints';
import { StreamVerifier, type StreamReport, type VerifiableEntry } from './chain/verifier';
import { listStreams } from './records';
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
 * the last member, so a verifier can hash the exact bytes without re-encoding them. Each
 * stream ends at its latest checkpoint, so everything exported is signed; the caller signs
 * the heads first (`checkpointAll`) to take in the newest entries.
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
    const signedTo = Math.max(0, ...(checkpoints.get(stream) ?? []).map((c) => c.seq));
    if (signedTo === 0) continue;
    yield JSON.stringify({ type: 'head', stream, seq: signedTo });
    for await (const item of sources.store.query(sources.table, {
      index: 'gsi1',
      partition: ['gsi1pk', `S#${stream}`],
    })) {
      if (Number(item.seq) > signedTo) break;
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

const STREAM_MARK = '{"type":"entry","stream":';
const SEQ_MARK = ',"seq":';
/** `,"id":"<32 hex>","hash":"<64 hex>","prevHash":"<64 hex>"`: fixed width, as entryLine writes. */
const TAIL_WIDTH = 192;
const TAIL_MARKS: Array<[number, string]> = [
  [0, ',"id":"'],
  [39, '","hash":"'],
  [113, '","prevHash":"'],
  [191, '"'],
];

/**
 * Parses an entry line, taking the record's bytes as written rather than re-encoding them.
 * Lines in the layout this module writes are sliced by position, which keeps verification
 * close to the cost of hashing; anything else is parsed as ordinary JSON. Either way, what is
 * read is only trusted once its hashes check out.
 */
export function parseEntryLine(line: string): VerifiableEntry & { stream: string } {
  const mark = line.indexOf(RECORD_MARK);
  if (mark < 0 || !line.endsWith('}')) throw new Error('an entry line has no record');
  const body = line.slice(mark + RECORD_MARK.length, -1);
  const at = mark - TAIL_WIDTH;
  const seqAt = line.lastIndexOf(SEQ_MARK, at);
  const fixed =
    at > 0 &&
    seqAt > STREAM_MARK.length &&
    line.startsWith(STREAM_MARK) &&
    TAIL_MARKS.every(([offset, text]) => line.startsWith(text, at + offset));
  const streamText = fixed ? line.slice(STREAM_MARK.length, seqAt) : '';
  if (fixed && !streamText.includes('\\')) {
    return {
      stream: streamText.slice(1, -1),
      seq: Number(line.slice(seqAt + SEQ_MARK.length, at)),
      id: line.slice(at + 7, at + 39),
      hash: line.slice(at + 49, at + 113),
      prevHash: line.slice(at + 127, at + 191),
      body,
    };
  }
  const meta = JSON.parse(`${line.slice(0, mark)}}`) as EntryMeta;
  return {
    stream: meta.stream,
    seq: meta.seq,
    id: meta.id,
    hash: meta.hash,
    prevHash: meta.prevHash,
    body,
  };
}

/**
 * Verifies an export offline with nothing but the signer's public key. The key inside the
 * file is ignored: whoever could alter the file could replace that key too. Takes the file as
 * raw chunks and splits lines itself, so each chunk is verified without an await per entry.
 */
export async function verifyExport(
  chunks: AsyncIterable<string | Buffer>,
  publicKeyPem: string,
): Promise<VerifyReport> {
  const reader = new ExportReader(publicKeyPem);
  let rest = '';
  for await (const chunk of chunks) {
    const text = rest + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) reader.line(line);
  }
  reader.line(rest);
  return reader.finish();
}

class ExportReader {
  private header = false;
  private readonly checkpoints = new Map<string, Checkpoint[]>();
  private readonly reports: StreamReport[] = [];
  private current: { stream: string; verifier: StreamVerifier } | undefined;

  constructor(private readonly publicKeyPem: string) {}

  line(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim().length === 0) return;
    if (!this.header) return this.readHeader(line);
    if (line.startsWith('{"type":"entry"')) return this.readEntry(line);

    const record = JSON.parse(line) as Record<string, unknown>;
    if (record.type === 'checkpoint') {
      const { type: _type, ...checkpoint } = record as unknown as Checkpoint & { type: string };
      const list = this.checkpoints.get(checkpoint.stream) ?? [];
      list.push(checkpoint);
      this.checkpoints.set(checkpoint.stream, list);
      return;
    }
    if (record.type !== 'head') throw new Error(`unknown line type ${String(record.type)}`);
    this.closeStream();
    const stream = String(record.stream);
    const verifier = new StreamVerifier(
      stream,
      this.checkpoints.get(stream) ?? [],
      this.publicKeyPem,
      {
        headSeq: Number(record.seq),
      },
    );
    this.checkpoints.delete(stream);
    this.current = { stream, verifier };
  }

  finish(): VerifyReport {
    if (!this.header) throw new Error('not a Vigil audit export');
    this.closeStream();
    // Checkpoints whose stream has no head in the file: the whole stream was removed.
    for (const [stream, list] of this.checkpoints) {
      this.reports.push(new StreamVerifier(stream, list, this.publicKeyPem).finish());
    }
    return summarize(this.reports);
  }

  private readHeader(line: string): void {
    const header = JSON.parse(line) as { type?: string; filtered?: boolean };
    if (header.type !== EXPORT_TYPE) throw new Error('not a Vigil audit export');
    if (header.filtered) throw new Error('a filtered export cannot be verified as a whole chain');
    this.header = true;
  }

  private readEntry(line: string): void {
    const entry = parseEntryLine(line);
    if (!this.current || this.current.stream !== entry.stream) {
      throw new Error('an entry appears outside its stream');
    }
    this.current.verifier.push(entry);
  }

  /** An export vouches only for what is signed: entries past the last checkpoint fail it. */
  private closeStream(): void {
    if (this.current) this.reports.push(signedToTheEnd(this.current.verifier.finish()));
    this.current = undefined;
  }
}

export { readCheckpoints };

function signedToTheEnd(report: StreamReport): StreamReport {
  if (report.unattested === 0) return report;
  const problem = {
    stream: report.stream,
    seq: report.lastCheckpointSeq + 1,
    kind: 'unsigned' as const,
    detail: `${report.unattested} entries from here on are covered by no valid signed checkpoint`,
  };
  return { ...report, problems: [...report.problems, problem].sort((a, b) => a.seq - b.seq) };
}
