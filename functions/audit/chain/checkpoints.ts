import type { Clock, LogSink, Signer, Store } from '../../platform/ports';
import { padSeq } from '../records';
import { canonicalize } from './canonical';
import { MerkleFrontier } from './hashes';
import type { Head } from './appender';

/** The sink log that holds signed checkpoints; the writer of entries cannot rewrite it. */
export const CHECKPOINT_LOG = 'checkpoints';

export interface CheckpointBody {
  stream: string;
  /** Number of entries covered: the sequence number of the last one. */
  seq: number;
  headHash: string;
  merkleRoot: string;
  at: string;
  keyId: string;
}

export interface Checkpoint extends CheckpointBody {
  /** Base64 DER ECDSA P-256 signature over the canonical body. */
  signature: string;
}

export const checkpointKey = (stream: string, seq: number, at: string) => ({
  pk: `C#${stream}`,
  sk: `${padSeq(seq)}#${at}`,
});

export function checkpointMessage(body: CheckpointBody): Buffer {
  return Buffer.from(canonicalize(body));
}

/** Signs a head and writes the checkpoint to the log sink and, for queries, to the store. */
export async function writeCheckpoint(
  deps: { signer: Signer; sink: LogSink; store: Store; table: string; clock: Clock },
  head: Head,
): Promise<Checkpoint> {
  const body: CheckpointBody = {
    stream: head.stream,
    seq: head.seq,
    headHash: head.hash,
    merkleRoot: MerkleFrontier.restore(head.peaks, head.seq).root(),
    at: deps.clock.now().toISOString(),
    keyId: deps.signer.keyId,
  };
  const signature = (await deps.signer.sign(checkpointMessage(body))).toString('base64');
  const checkpoint: Checkpoint = { ...body, signature };

  const { rejected } = await deps.sink.append(CHECKPOINT_LOG, [
    { timestamp: Date.parse(body.at), message: JSON.stringify(checkpoint) },
  ]);
  if (rejected.length > 0) throw new Error('the log sink refused a checkpoint');
  await deps.store.put(deps.table, {
    ...checkpointKey(body.stream, body.seq, body.at),
    checkpoint: JSON.stringify(checkpoint),
  });
  return checkpoint;
}

/** Latest checkpoint in the store for a stream, if any. */
export async function latestCheckpoint(
  store: Store,
  table: string,
  stream: string,
): Promise<Checkpoint | undefined> {
  for await (const item of store.query(table, {
    partition: ['pk', `C#${stream}`],
    descending: true,
    limit: 1,
    consistent: true,
  })) {
    return JSON.parse(item.checkpoint as string) as Checkpoint;
  }
  return undefined;
}

/** Every copy the store keeps of a stream's checkpoints, oldest first. */
export async function storedCheckpoints(
  store: Store,
  table: string,
  stream: string,
): Promise<Checkpoint[]> {
  const copies: Checkpoint[] = [];
  for await (const item of store.query(table, {
    partition: ['pk', `C#${stream}`],
    consistent: true,
  })) {
    copies.push(JSON.parse(item.checkpoint as string) as Checkpoint);
  }
  return copies;
}

/**
 * Every checkpoint in the sink, grouped by stream, in the order they were written. Lines that
 * are not checkpoints are counted, not thrown on: the verifier reports them.
 */
export async function readCheckpoints(
  sink: LogSink,
): Promise<Map<string, Checkpoint[]> & { unreadable?: number }> {
  const byStream: Map<string, Checkpoint[]> & { unreadable?: number } = new Map();
  byStream.unreadable = 0;
  for await (const record of sink.read(CHECKPOINT_LOG)) {
    const checkpoint = parseCheckpoint(record.message);
    if (!checkpoint) {
      byStream.unreadable += 1;
      continue;
    }
    const list = byStream.get(checkpoint.stream) ?? [];
    list.push(checkpoint);
    byStream.set(checkpoint.stream, list);
  }
  return byStream;
}

function parseCheckpoint(message: string): Checkpoint | undefined {
  try {
    const value = JSON.parse(message) as Checkpoint;
    const ok =
      typeof value.stream === 'string' &&
      Number.isInteger(value.seq) &&
      typeof value.signature === 'string';
    return ok ? value : undefined;
  } catch {
    return undefined;
  }
}
