import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { ConditionFailedError, type Clock, type Item, type Store } from '../../platform/ports';
import {
  type Candidate,
  type EntryBody,
  entryItem,
  entryKey,
  headKey,
  streamRegistryItem,
} from '../records';
import { canonicalize } from './canonical';
import { GENESIS_HASH, MerkleFrontier, linkHash } from './hashes';

/** Bytes of entries committed in one head write; the head item must stay under 400 KB. */
export const MAX_PENDING_BYTES = 1024 * 1024;
/** The compressed batch must leave the head item well under DynamoDB's 400 KB. */
export const MAX_PENDING_COMPRESSED = 320 * 1024;
/** Entries per commit: bounds the batch writes that follow each head update. */
export const MAX_CHUNK_ENTRIES = 1000;
/** Lost races are retried this often before the batch is reported as failed. */
const MAX_RACE_RETRIES = 50;

export interface Head {
  stream: string;
  seq: number;
  hash: string;
  peaks: string[];
  /** The committed batch not yet written: gzip of a PendingBatch in JSON. */
  pending?: Uint8Array;
  pendingId?: string;
}

/** What a head carries between its commit and the writing of its entries. */
interface PendingBatch {
  prev: { seq: number; hash: string; peaks: string[] };
  receivedAt: string;
  candidates: Candidate[];
}

export type AppendStatus = 'accepted' | 'duplicate' | 'failed';

export interface AppendResult {
  /** By candidate id. */
  status: Map<string, AppendStatus>;
  head: Head;
}

/**
 * Appends to a stream's hash chain with single-item conditional writes only.
 *
 * The commit point is one conditional update of the stream's head: it advances the sequence,
 * the link hash and the Merkle frontier, and carries the new entries as `pending`. The entries
 * are then written and `pending` is cleared. A writer that dies after the commit leaves
 * `pending` behind; the next append to the stream writes those entries first (they are
 * deterministic, so writing them twice is harmless). So an entry is never lost once committed,
 * never duplicated (dedupe reads happen after any roll-forward), and two writers racing for
 * the same stream resolve by the head's condition.
 */
export class ChainAppender {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: Store,
    private readonly table: string,
    private readonly clock: Clock,
  ) {}

  /** Serialises appends per stream within this process so races are rare, not just safe. */
  append(stream: string, candidates: Candidate[]): Promise<AppendResult> {
    const previous = this.locks.get(stream) ?? Promise.resolve();
    const run = previous.then(() => this.appendAll(stream, candidates));
    const settled = run.catch(() => undefined);
    this.locks.set(stream, settled);
    void settled.then(() => {
      if (this.locks.get(stream) === settled) this.locks.delete(stream);
    });
    return run;
  }

  async readHead(stream: string): Promise<Head> {
    const item = await this.store.get(this.table, headKey(stream), true);
    if (!item) return { stream, seq: 0, hash: GENESIS_HASH, peaks: [] };
    return {
      stream,
      seq: item.seq as number,
      hash: item.hash as string,
      peaks: (item.peaks as string[] | undefined) ?? [],
      pending: item.pending as Uint8Array | undefined,
      pendingId: item.pendingId as string | undefined,
    };
  }

  /** Writes entries a crashed writer committed but did not store, then clears the marker. */
  async rollForward(head: Head): Promise<Head> {
    if (!head.pending || !head.pendingId) return head;
    const { prev, receivedAt, candidates } = JSON.parse(
      zlib.gunzipSync(head.pending).toString('utf8'),
    ) as PendingBatch;
    const { items } = this.link({ ...prev, stream: head.stream }, candidates, receivedAt);
    const { unprocessed } = await this.store.batchPut(this.table, items);
    if (unprocessed.length > 0) throw new Error('committed entries could not be written yet');
    return this.clearPending(head);
  }

  /** Drops the marker once its entries are stored; losing a race to do so is fine. */
  private async clearPending(head: Head): Promise<Head> {
    try {
      await this.store.update(this.table, headKey(head.stream), {
        remove: ['pending', 'pendingId'],
        expect: { pendingId: head.pendingId },
      });
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
    }
    return { ...head, pending: undefined, pendingId: undefined };
  }

  private async appendAll(stream: string, candidates: Candidate[]): Promise<AppendResult> {
    const status = new Map<string, AppendStatus>();
    let head = await this.readHead(stream);
    const queue = chunkBySize(candidates);
    for (let chunk = queue.shift(); chunk; chunk = queue.shift()) {
      const result = await this.appendChunk(stream, chunk, status);
      if (result === 'too-large') {
        // Poorly compressible events: commit the chunk in two halves instead.
        const half = Math.ceil(chunk.length / 2);
        queue.unshift(chunk.slice(0, half), chunk.slice(half));
        continue;
      }
      head = result;
    }
    return { status, head };
  }

  private async appendChunk(
    stream: string,
    candidates: Candidate[],
    status: Map<string, AppendStatus>,
  ): Promise<Head | 'too-large'> {
    for (let attempt = 0; attempt < MAX_RACE_RETRIES; attempt += 1) {
      const head = await this.rollForward(await this.readHead(stream));
      const fresh = await this.withoutDuplicates(candidates, status);
      if (fresh.length === 0) return head;

      const { next, items } = this.link(head, fresh, this.clock.now().toISOString());
      if ((next.pending?.byteLength ?? 0) > MAX_PENDING_COMPRESSED && fresh.length > 1) {
        return 'too-large';
      }
      try {
        await this.commit(head, next, items);
      } catch (error) {
        if (error instanceof ConditionFailedError) continue;
        throw error;
      }
      const { unprocessed } = await this.store.batchPut(this.table, items);
      const failed = new Set(unprocessed.map((item) => String(item.pk)));
      for (const candidate of fresh) {
        const stored = !failed.has(entryKey(candidate.id).pk);
        status.set(candidate.id, stored ? 'accepted' : 'failed');
      }
      // With entries unwritten the marker stays, so the next append completes them.
      return failed.size > 0 ? next : this.clearPending(next);
    }
    throw new Error(`stream ${stream}: too many concurrent writers`);
  }

  /** Drops candidates already stored, and repeats within the batch (first one wins). */
  private async withoutDuplicates(
    candidates: Candidate[],
    status: Map<string, AppendStatus>,
  ): Promise<Candidate[]> {
    const keys = [...new Set(candidates.map((c) => c.id))].map(entryKey);
    const existing = await this.store.batchGet(this.table, keys, true);
    const seen = new Set(existing.map((item) => String(item.pk).slice(2)));
    const fresh: Candidate[] = [];
    for (const candidate of candidates) {
      if (seen.has(candidate.id)) {
        if (!status.has(candidate.id)) status.set(candidate.id, 'duplicate');
        continue;
      }
      seen.add(candidate.id);
      fresh.push(candidate);
    }
    return fresh;
  }

  /** Entries are a pure function of the previous head, the candidates and the arrival time. */
  private link(
    head: Head,
    candidates: Candidate[],
    receivedAt: string,
  ): { next: Head; items: Item[] } {
    const frontier = MerkleFrontier.restore(head.peaks, head.seq);
    let { seq, hash } = head;
    const items: Item[] = [];
    for (const candidate of candidates) {
      seq += 1;
      const body: EntryBody = { ...candidate, stream: head.stream, seq, receivedAt };
      const canonical = canonicalize(body);
      const linked = linkHash(hash, canonical);
      items.push(entryItem(body, canonical, hash, linked));
      frontier.append(linked);
      hash = linked;
    }
    const next: Head = {
      stream: head.stream,
      seq,
      hash,
      peaks: frontier.snapshot(),
      // The batch, not the entries: far smaller, and enough to rebuild them exactly.
      pending: zlib.gzipSync(
        JSON.stringify({
          prev: { seq: head.seq, hash: head.hash, peaks: head.peaks },
          receivedAt,
          candidates,
        } satisfies PendingBatch),
        { level: 1 },
      ),
      pendingId: crypto.randomUUID(),
    };
    return { next, items };
  }

  private async commit(head: Head, next: Head, items: Item[]): Promise<void> {
    const fields = {
      seq: next.seq,
      hash: next.hash,
      peaks: next.peaks,
      pending: next.pending,
      pendingId: next.pendingId,
      updatedAt: this.clock.now().toISOString(),
      count: items.length + head.seq,
    };
    if (head.seq === 0) {
      // Registered first, so a writer dying here leaves no head the verifier cannot find.
      await this.store.put(this.table, streamRegistryItem(head.stream));
      await this.store.put(this.table, { ...headKey(head.stream), ...fields }, { ifAbsent: true });
      return;
    }
    await this.store.update(this.table, headKey(head.stream), {
      set: fields,
      expect: { seq: head.seq, pendingId: undefined },
    });
  }
}

/** Splits a batch so that each commit's pending entries fit in the head item. */
function chunkBySize(candidates: Candidate[]): Candidate[][] {
  const chunks: Candidate[][] = [];
  let current: Candidate[] = [];
  let bytes = 0;
  for (const candidate of candidates) {
    const size = JSON.stringify(candidate).length + 16;
    const full = bytes + size > MAX_PENDING_BYTES || current.length >= MAX_CHUNK_ENTRIES;
    if (current.length > 0 && full) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(candidate);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
