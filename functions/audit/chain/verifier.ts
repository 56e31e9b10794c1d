import { verifySignature } from '../../platform/keys/kms';
import { type Checkpoint, checkpointMessage } from './checkpoints';
import { GENESIS_HASH, MerkleFrontier, linkHash } from './hashes';

export type ProblemKind =
  | 'altered'
  | 'removed'
  | 'inserted'
  | 'reordered'
  | 'truncated'
  | 'checkpoint-forged'
  | 'checkpoint-mismatch';

export interface Problem {
  stream: string;
  /** The first sequence number affected. */
  seq: number;
  /** The record id of the entry named, where there is one. */
  id?: string;
  kind: ProblemKind;
  detail: string;
}

export interface VerifiableEntry {
  seq: number;
  hash: string;
  prevHash: string;
  body: string;
  id?: string;
  /** Extra consistency check of stored attributes against the body; returns a reason. */
  inconsistency?: () => string | undefined;
}

export interface StreamReport {
  stream: string;
  entries: number;
  checkpoints: number;
  lastCheckpointSeq: number;
  /** Entries after the last valid checkpoint: not yet signed, so only chained. */
  unattested: number;
  problems: Problem[];
}

export interface VerifyOptions {
  /** Sequence number the stream's head claims; a shorter chain has lost its tail. */
  headSeq?: number;
  maxProblems?: number;
}

/**
 * Re-derives a stream's chain, Merkle tree and checkpoints from its entries in sequence order,
 * holding only a window of two entries and the Merkle frontier in memory.
 */
export async function verifyStream(
  stream: string,
  entries: AsyncIterable<VerifiableEntry>,
  checkpoints: Checkpoint[],
  publicKeyPem: string,
  options: VerifyOptions = {},
): Promise<StreamReport> {
  const maxProblems = options.maxProblems ?? 20;
  const problems: Problem[] = [];
  const report = (p: Omit<Problem, 'stream'>) => {
    if (problems.length < maxProblems) problems.push({ stream, ...p });
  };

  const valid = validCheckpoints(checkpoints, publicKeyPem, report);
  const lastCheckpointSeq = valid.reduce((max, c) => Math.max(max, c.seq), 0);
  const bySeq = groupBySeq(valid);

  const frontier = new MerkleFrontier();
  let running = GENESIS_HASH;
  let beforeRunning = GENESIS_HASH;
  let lastSeq = 0;
  let skipLink = false;
  let lastMatched = 0;

  const iterator = entries[Symbol.asyncIterator]();
  let next = await iterator.next();
  while (!next.done) {
    const entry = next.value;
    next = await iterator.next();
    const ahead = next.done ? undefined : next.value;
    const named = { seq: entry.seq, id: entry.id };

    if (entry.seq <= lastSeq) {
      report({ ...named, kind: 'inserted', detail: `a second entry claims sequence ${entry.seq}` });
      continue;
    }
    if (entry.seq > lastSeq + 1) {
      report({
        seq: lastSeq + 1,
        kind: 'removed',
        detail: `entries ${lastSeq + 1}..${entry.seq - 1} are missing`,
      });
      skipLink = true;
    }

    const selfConsistent = linkHash(entry.prevHash, entry.body) === entry.hash;
    if (!selfConsistent) {
      report({ ...named, kind: 'altered', detail: 'the entry does not match its hash' });
    } else if (!skipLink && entry.prevHash !== running) {
      if (ahead && ahead.hash === entry.prevHash) {
        report({
          ...named,
          kind: 'reordered',
          detail: `entries ${entry.seq} and ${ahead.seq} are swapped`,
        });
        skipLink = true;
      } else if (entry.prevHash === beforeRunning) {
        report({
          seq: entry.seq - 1,
          kind: 'inserted',
          detail: 'the entry before this one does not belong to the chain',
        });
      } else {
        report({ ...named, kind: 'removed', detail: 'the entry it links to is missing' });
      }
    } else {
      skipLink = false;
      const reason = entry.inconsistency?.();
      if (reason) report({ ...named, kind: 'altered', detail: reason });
    }

    beforeRunning = running;
    running = entry.hash;
    lastSeq = entry.seq;
    frontier.append(entry.hash);
    for (const checkpoint of bySeq.get(entry.seq) ?? []) {
      if (checkpoint.headHash === running && checkpoint.merkleRoot === frontier.root()) {
        lastMatched = entry.seq;
        continue;
      }
      // Already explained by a problem found since the last matching checkpoint.
      if (problems.some((p) => p.seq > lastMatched)) continue;
      // Otherwise a consistent rewrite: some entry after the last matching checkpoint changed.
      report({
        seq: lastMatched + 1,
        kind: 'checkpoint-mismatch',
        detail: `entries ${lastMatched + 1}..${entry.seq} differ from the checkpoint signed at ${checkpoint.at}`,
      });
    }
  }

  if (lastSeq < lastCheckpointSeq) {
    report({
      seq: lastSeq + 1,
      kind: 'truncated',
      detail: `entries ${lastSeq + 1}..${lastCheckpointSeq} were signed but are gone`,
    });
  } else if (options.headSeq !== undefined && lastSeq < options.headSeq) {
    report({
      seq: lastSeq + 1,
      kind: 'truncated',
      detail: `the head counts ${options.headSeq} entries but the chain ends at ${lastSeq}`,
    });
  } else if (options.headSeq !== undefined && lastSeq > options.headSeq) {
    report({
      seq: options.headSeq + 1,
      kind: 'inserted',
      detail: `entries after ${options.headSeq} were never committed by a writer`,
    });
  }

  problems.sort((a, b) => a.seq - b.seq);
  return {
    stream,
    entries: lastSeq,
    checkpoints: valid.length,
    lastCheckpointSeq,
    unattested: Math.max(0, lastSeq - lastCheckpointSeq),
    problems,
  };
}

function validCheckpoints(
  checkpoints: Checkpoint[],
  publicKeyPem: string,
  report: (p: Omit<Problem, 'stream'>) => void,
): Checkpoint[] {
  const valid: Checkpoint[] = [];
  for (const checkpoint of checkpoints) {
    const { signature, ...body } = checkpoint;
    const message = checkpointMessage(body);
    if (verifySignature(publicKeyPem, message, Buffer.from(signature ?? '', 'base64'))) {
      valid.push(checkpoint);
    } else {
      report({
        seq: checkpoint.seq,
        kind: 'checkpoint-forged',
        detail: `the checkpoint at ${checkpoint.at} has no valid signature`,
      });
    }
  }
  return valid;
}

function groupBySeq(checkpoints: Checkpoint[]): Map<number, Checkpoint[]> {
  const map = new Map<number, Checkpoint[]>();
  for (const checkpoint of checkpoints) {
    map.set(checkpoint.seq, [...(map.get(checkpoint.seq) ?? []), checkpoint]);
  }
  return map;
}
