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
  | 'checkpoint-missing'
  | 'checkpoint-mismatch'
  /** In an export, entries no signed checkpoint covers: anyone could have written them. */
  | 'unsigned';

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
  /** Entries committed by a writer that stopped before storing them; the next write completes them. */
  pending?: number;
  problems: Problem[];
}

export interface VerifyOptions {
  /** Sequence number the stream's head claims; a shorter chain has lost its tail. */
  headSeq?: number;
  /**
   * When the head carries a committed batch a writer has not finished storing, entries up to
   * this sequence number may exist or not yet: they are pending, not tampering.
   */
  pendingUpTo?: number;
  maxProblems?: number;
}

/**
 * Re-derives a stream's chain, Merkle tree and checkpoints from its entries in sequence order,
 * holding only a window of two entries and the Merkle frontier in memory. Entries are pushed
 * one at a time, synchronously, so callers can feed it in batches without an await per entry.
 */
export class StreamVerifier {
  private readonly problems: Problem[] = [];
  private readonly maxProblems: number;
  private readonly valid: Checkpoint[];
  private readonly bySeq: Map<number, Checkpoint[]>;
  private readonly frontier = MerkleFrontier.empty();
  private running = GENESIS_HASH;
  private beforeRunning = GENESIS_HASH;
  private lastSeq = 0;
  private skipLink = false;
  private lastMatched = 0;
  private held: VerifiableEntry | undefined;

  constructor(
    private readonly stream: string,
    checkpoints: Checkpoint[],
    publicKeyPem: string,
    private readonly options: VerifyOptions = {},
  ) {
    this.maxProblems = options.maxProblems ?? 20;
    this.valid = validCheckpoints(checkpoints, publicKeyPem, (p) => this.report(p));
    this.bySeq = groupBySeq(this.valid);
  }

  /** Takes the next entry; the one before it is checked now that its successor is known. */
  push(entry: VerifiableEntry): void {
    if (this.held) this.check(this.held, entry);
    this.held = entry;
  }

  finish(): StreamReport {
    if (this.held) this.check(this.held, undefined);
    this.held = undefined;
    this.checkTail();
    const lastCheckpointSeq = this.valid.reduce((max, c) => Math.max(max, c.seq), 0);
    return {
      stream: this.stream,
      entries: this.lastSeq,
      checkpoints: this.valid.length,
      lastCheckpointSeq,
      unattested: Math.max(0, this.lastSeq - lastCheckpointSeq),
      pending:
        this.options.pendingUpTo !== undefined
          ? Math.max(
              0,
              this.options.pendingUpTo - Math.max(this.lastSeq, this.options.headSeq ?? 0),
            )
          : undefined,
      problems: [...this.problems].sort((a, b) => a.seq - b.seq),
    };
  }

  private report(problem: Omit<Problem, 'stream'>): void {
    if (this.problems.length < this.maxProblems)
      this.problems.push({ stream: this.stream, ...problem });
  }

  private check(entry: VerifiableEntry, ahead: VerifiableEntry | undefined): void {
    const named = { seq: entry.seq, id: entry.id };
    if (entry.seq <= this.lastSeq) {
      this.report({
        ...named,
        kind: 'inserted',
        detail: `a second entry claims sequence ${entry.seq}`,
      });
      return;
    }
    if (entry.seq > this.lastSeq + 1) {
      this.report({
        seq: this.lastSeq + 1,
        kind: 'removed',
        detail: `entries ${this.lastSeq + 1}..${entry.seq - 1} are missing`,
      });
      this.skipLink = true;
    }

    if (linkHash(entry.prevHash, entry.body) !== entry.hash) {
      this.report({ ...named, kind: 'altered', detail: 'the entry does not match its hash' });
    } else if (!this.skipLink && entry.prevHash !== this.running) {
      this.checkLink(entry, ahead);
    } else {
      this.skipLink = false;
      const reason = entry.inconsistency?.();
      if (reason) this.report({ ...named, kind: 'altered', detail: reason });
    }

    this.beforeRunning = this.running;
    this.running = entry.hash;
    this.lastSeq = entry.seq;
    this.frontier.append(entry.hash);
    this.checkCheckpoints(entry.seq);
  }

  /** The entry is intact but does not follow the one before it: say how the order broke. */
  private checkLink(entry: VerifiableEntry, ahead: VerifiableEntry | undefined): void {
    const named = { seq: entry.seq, id: entry.id };
    if (ahead && ahead.hash === entry.prevHash) {
      this.report({
        ...named,
        kind: 'reordered',
        detail: `entries ${entry.seq} and ${ahead.seq} are swapped`,
      });
      this.skipLink = true;
    } else if (entry.prevHash === this.beforeRunning) {
      this.report({
        seq: entry.seq - 1,
        kind: 'inserted',
        detail: 'the entry before this one does not belong to the chain',
      });
    } else {
      this.report({ ...named, kind: 'removed', detail: 'the entry it links to is missing' });
    }
  }

  private checkCheckpoints(seq: number): void {
    const due = this.bySeq.get(seq);
    if (!due) return;
    const root = this.frontier.root();
    for (const checkpoint of due) {
      if (checkpoint.headHash === this.running && checkpoint.merkleRoot === root) {
        this.lastMatched = seq;
        continue;
      }
      // Already explained by a problem found since the last matching checkpoint.
      if (this.problems.some((p) => p.seq > this.lastMatched)) continue;
      // Otherwise a consistent rewrite: some entry after the last matching checkpoint changed.
      this.report({
        seq: this.lastMatched + 1,
        kind: 'checkpoint-mismatch',
        detail: `entries ${this.lastMatched + 1}..${seq} differ from the checkpoint signed at ${checkpoint.at}`,
      });
    }
  }

  private checkTail(): void {
    const lastCheckpointSeq = this.valid.reduce((max, c) => Math.max(max, c.seq), 0);
    const { headSeq } = this.options;
    const next = this.lastSeq + 1;
    if (this.lastSeq < lastCheckpointSeq) {
      this.report({
        seq: next,
        kind: 'truncated',
        detail: `entries ${next}..${lastCheckpointSeq} were signed but are gone`,
      });
    } else if (headSeq !== undefined && this.lastSeq < headSeq) {
      this.report({
        seq: next,
        kind: 'truncated',
        detail: `the head counts ${headSeq} entries but the chain ends at ${this.lastSeq}`,
      });
    } else if (headSeq !== undefined && this.lastSeq > (this.options.pendingUpTo ?? headSeq)) {
      this.report({
        seq: headSeq + 1,
        kind: 'inserted',
        detail: `entries after ${headSeq} were never committed by a writer`,
      });
    }
  }
}

/** Verifies a stream whose entries arrive as an async iterable (the store, page by page). */
export async function verifyStream(
  stream: string,
  entries: AsyncIterable<VerifiableEntry>,
  checkpoints: Checkpoint[],
  publicKeyPem: string,
  options: VerifyOptions = {},
): Promise<StreamReport> {
  const verifier = new StreamVerifier(stream, checkpoints, publicKeyPem, options);
  for await (const entry of entries) verifier.push(entry);
  return verifier.finish();
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
