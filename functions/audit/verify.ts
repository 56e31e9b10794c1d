import type { Item, LogSink, Signer, Store } from '../platform/ports';
import zlib from 'node:zlib';
import { KEY_ATTRIBUTES } from '../platform/store/rules';
import { type Checkpoint, readCheckpoints, storedCheckpoints } from './chain/checkpoints';
import {
  type Problem,
  type StreamReport,
  type VerifiableEntry,
  verifyStream,
} from './chain/verifier';
import { type EntryBody, headKey, indexAttributes, listStreams } from './records';

export interface VerifyReport {
  ok: boolean;
  verifiedAt: string;
  entries: number;
  streams: StreamReport[];
  /** The first bad entry of the first stream that has one. */
  firstProblem?: Problem;
}

export interface VerifySources {
  store: Store;
  table: string;
  sink: LogSink;
  signer: Signer;
}

/**
 * Re-derives every stream from the store and the signed checkpoints in the log sink. Streams
 * known only from checkpoints are verified too, so deleting a stream's head hides nothing.
 */
export async function verifyLog(
  sources: VerifySources,
  onProgress?: (stream: string, entries: number) => void,
): Promise<VerifyReport> {
  const publicKey = await sources.signer.publicKeyPem();
  const checkpoints = await readCheckpoints(sources.sink);
  const heads = await readHeads(sources.store, sources.table);
  const streams = [...new Set([...heads.keys(), ...checkpoints.keys()])].sort();

  const reports: StreamReport[] = [];
  for (const stream of streams) {
    const entries = storedEntries(sources.store, sources.table, stream, onProgress);
    const head = heads.get(stream) ?? { seq: 0 };
    const { list, missing } = await withStoreCopy(sources, stream, checkpoints.get(stream) ?? []);
    const report = await verifyStream(stream, entries, list, publicKey, {
      headSeq: head.seq,
      pendingUpTo: head.pendingUpTo,
    });
    if (missing) report.problems.unshift(missing);
    reports.push(report);
  }
  const unreadable = checkpoints.unreadable ?? 0;
  if (unreadable > 0) reports.push(unreadableReport(unreadable));
  return summarize(reports);
}

/**
 * The store keeps a copy of each checkpoint. One that the append-only log no longer holds
 * means the log was cut, edited or replaced: reported (the earliest), and still used to verify.
 */
async function withStoreCopy(sources: VerifySources, stream: string, fromSink: Checkpoint[]) {
  const signed = new Set(fromSink.map((c) => c.signature));
  const lost = (await storedCheckpoints(sources.store, sources.table, stream)).filter(
    (copy) => !signed.has(copy.signature),
  );
  const first = lost[0];
  if (!first) return { list: fromSink };
  const missing: Problem = {
    stream,
    seq: first.seq,
    kind: 'checkpoint-missing',
    detail: `${lost.length} checkpoint(s) from the one signed at ${first.at} are in the store but missing from the append-only log`,
  };
  return { list: [...fromSink, ...lost], missing };
}

function unreadableReport(lines: number): StreamReport {
  return {
    stream: '(checkpoint log)',
    entries: 0,
    checkpoints: 0,
    lastCheckpointSeq: 0,
    unattested: 0,
    problems: [
      {
        stream: '(checkpoint log)',
        seq: 0,
        kind: 'checkpoint-forged',
        detail: `${lines} line(s) of the checkpoint log are not checkpoints`,
      },
    ],
  };
}

export function summarize(reports: StreamReport[]): VerifyReport {
  const firstProblem = reports.flatMap((r) => r.problems.slice(0, 1))[0];
  return {
    ok: firstProblem === undefined,
    verifiedAt: new Date().toISOString(),
    entries: reports.reduce((sum, r) => sum + r.entries, 0),
    streams: reports,
    firstProblem,
  };
}

interface HeadState {
  /** Entries the head vouches for as stored. */
  seq: number;
  /** With a batch still pending: the sequence number it will reach. */
  pendingUpTo?: number;
}

async function readHeads(store: Store, table: string): Promise<Map<string, HeadState>> {
  const heads = new Map<string, HeadState>();
  for await (const stream of listStreams(store, table)) {
    const head = await store.get(table, headKey(stream), true);
    const seq = Number(head?.seq ?? 0);
    if (head?.pending instanceof Uint8Array) {
      const batch = JSON.parse(zlib.gunzipSync(head.pending).toString('utf8')) as {
        prev: { seq: number };
      };
      heads.set(stream, { seq: batch.prev.seq, pendingUpTo: seq });
    } else {
      heads.set(stream, { seq });
    }
  }
  return heads;
}

async function* storedEntries(
  store: Store,
  table: string,
  stream: string,
  onProgress?: (stream: string, entries: number) => void,
): AsyncIterable<VerifiableEntry> {
  let count = 0;
  for await (const item of store.query(table, {
    index: 'gsi1',
    partition: ['gsi1pk', `S#${stream}`],
  })) {
    count += 1;
    if (onProgress && count % 5000 === 0) onProgress(stream, count);
    yield toVerifiable(item);
  }
  onProgress?.(stream, count);
}

function toVerifiable(item: Item): VerifiableEntry {
  return {
    // An index key edited into something that is not a number reads as position 0: named below.
    seq: Number.isFinite(Number(item.gsi1sk)) ? Number(item.gsi1sk) : 0,
    hash: String(item.hash),
    prevHash: String(item.prevHash),
    body: String(item.body),
    id: String(item.pk).slice(2),
    inconsistency: () => indexInconsistency(item),
  };
}

/** Stored index keys must say what the body says, or queries could hide or invent access. */
function indexInconsistency(item: Item): string | undefined {
  let body: EntryBody;
  try {
    body = JSON.parse(String(item.body)) as EntryBody;
  } catch {
    return 'the body is not JSON';
  }
  if (`E#${body.id}` !== item.pk) return 'the record id differs from the body';
  if (body.seq !== item.seq) return 'the sequence number differs from the body';
  const expected = indexAttributes(body);
  for (const name of KEY_ATTRIBUTES.filter((attribute) => attribute.startsWith('gsi'))) {
    if (expected[name] !== item[name]) return `the index attribute ${name} differs from the body`;
  }
  return undefined;
}

export type { Checkpoint };
