import crypto from 'node:crypto';
import type { Clock, LogSink, Signer, Store } from '../platform/ports';
import type { Log } from '../platform/logger';
import { ChainAppender, type Head } from './chain/appender';
import { latestCheckpoint, writeCheckpoint } from './chain/checkpoints';
import type { DecodedEvent } from './formats/types';
import type { NativeEvent } from './event';
import {
  type Candidate,
  entryKey,
  listStreams,
  type Source,
  eventKeyOf,
  recordIdOf,
} from './records';
import { canonicalize } from './chain/canonical';

export interface AuditDeps {
  store: Store;
  table: string;
  signer: Signer;
  sink: LogSink;
  clock: Clock;
  log: Log;
}

/** Where a batch came from; every event in it is recorded with its source and producer. */
export interface Origin {
  source: Source;
  stream: string;
  producer: string;
}

export interface IngestItem<R> {
  ref: R;
  decoded: DecodedEvent;
  /** The source's own id for the record, used to dedupe events that carry no id. */
  sourceRef?: string;
  /** The input as received, kept with a quarantined record. */
  raw?: unknown;
  /** Where the input was read (a file and position), kept with a quarantined record. */
  where?: string;
}

export type IngestStatus = 'accepted' | 'duplicate' | 'rejected' | 'failed';

export interface Outcome<R> {
  ref: R;
  status: IngestStatus;
  id?: string;
  field?: string;
  reason?: string;
}

/** Quarantined payloads are kept up to this size; larger ones are cut with a marker. */
const MAX_QUARANTINE_PAYLOAD = 32 * 1024;

/**
 * The audit log's write side: validate, dedupe, chain, index, and sign a checkpoint at the end
 * of every batch. A record that cannot be accepted goes to quarantine with its reason; it
 * never blocks or drops the rest of its batch.
 */
export class AuditLog {
  readonly appender: ChainAppender;

  constructor(private readonly deps: AuditDeps) {
    this.appender = new ChainAppender(deps.store, deps.table, deps.clock);
  }

  /**
   * With `checkpoint: false` the batch is signed by the next scheduled checkpoint instead; the
   * read-side functions use it, as they hold no signing rights.
   */
  async ingest<R>(
    origin: Origin,
    items: IngestItem<R>[],
    options: { checkpoint?: boolean } = {},
  ): Promise<Outcome<R>[]> {
    const outcomes: Outcome<R>[] = [];
    const candidates: Array<{ item: IngestItem<R>; candidate: Candidate }> = [];

    const now = this.deps.clock.now().getTime();
    for (const item of items) {
      const { parsed } = item.decoded;
      const problem = parsed.ok ? outOfTime(parsed.value.timestamp, now) : parsed.problem;
      if (problem) {
        await this.quarantine(origin, item, problem.field, problem.reason);
        outcomes.push({ ref: item.ref, status: 'rejected', ...problem });
        continue;
      }
      if (!parsed.ok) continue;
      candidates.push({ item, candidate: this.candidate(origin, item, parsed.value) });
    }
    if (candidates.length === 0) return outcomes;

    const { status, head } = await this.appender.append(
      origin.stream,
      candidates.map((c) => c.candidate),
    );
    const stored = await this.storedEvents(
      candidates.filter(({ candidate }) => status.get(candidate.id) === 'duplicate'),
    );
    const first = new Map<string, string>();
    for (const { item, candidate } of candidates) {
      // A repeat within the batch is a duplicate of its first occurrence, whatever that became.
      const repeat = first.has(candidate.id);
      const content = canonicalize(candidate.event);
      if (!repeat) first.set(candidate.id, content);
      const outcome = repeat ? 'duplicate' : (status.get(candidate.id) ?? 'failed');
      const original = repeat ? first.get(candidate.id) : stored.get(candidate.id);
      if (outcome === 'duplicate' && original !== undefined && original !== content) {
        // The same id with other content is no redelivery: the stored event stays as it was,
        // and this one is refused and kept in quarantine for someone to look at.
        const problem = { field: 'id', reason: 'names an event already stored with other content' };
        await this.quarantine(origin, item, problem.field, problem.reason);
        outcomes.push({ ref: item.ref, status: 'rejected', id: candidate.id, ...problem });
        continue;
      }
      outcomes.push({ ref: item.ref, status: outcome, id: candidate.id });
    }
    if (options.checkpoint !== false) await this.checkpointQuietly(head);
    return outcomes;
  }

  /** Signs every stream whose head moved since its last checkpoint; run every minute. */
  async checkpointAll(): Promise<{ streams: number; signed: number }> {
    let streams = 0;
    let signed = 0;
    for await (const stream of listStreams(this.deps.store, this.deps.table)) {
      streams += 1;
      const head = await this.appender.rollForward(await this.appender.readHead(stream));
      const last = await latestCheckpoint(this.deps.store, this.deps.table, stream);
      if (last && last.seq === head.seq && last.headHash === head.hash) continue;
      await writeCheckpoint(this.deps, head);
      signed += 1;
    }
    return { streams, signed };
  }

  /** The canonical content of the stored events these candidates repeat, by record id. */
  private async storedEvents(
    repeats: Array<{ candidate: Candidate }>,
  ): Promise<Map<string, string>> {
    const ids = [...new Set(repeats.map(({ candidate }) => candidate.id))];
    const found = new Map<string, string>();
    if (ids.length === 0) return found;
    for (const item of await this.deps.store.batchGet(this.deps.table, ids.map(entryKey), true)) {
      const body = JSON.parse(String(item.body)) as { event?: unknown };
      found.set(String(item.pk).slice(2), canonicalize(body.event ?? null));
    }
    return found;
  }

  private candidate<R>(origin: Origin, item: IngestItem<R>, event: NativeEvent): Candidate {
    const eventKey = eventKeyOf(event, origin.producer, item.sourceRef);
    return {
      id: recordIdOf(eventKey),
      eventKey,
      stream: origin.stream,
      source: origin.source,
      producer: origin.producer,
      format: item.decoded.format,
      event,
    };
  }

  private async checkpointQuietly(head: Head): Promise<void> {
    if (head.seq === 0 || head.pending) return;
    try {
      await writeCheckpoint(this.deps, head);
    } catch (error) {
      // The entries are stored and chained; the scheduled checkpoint will sign them.
      this.deps.log.warn('checkpoint deferred', { stream: head.stream, error: error as Error });
    }
  }

  private async quarantine<R>(origin: Origin, item: IngestItem<R>, field: string, reason: string) {
    const payload = truncate(serialise(item.raw));
    const basis = `${origin.source}\n${origin.stream}\n${item.sourceRef ?? payload}\n${item.decoded.entry ?? ''}\n${item.where ?? ''}`;
    const id = crypto.hash('sha256', basis, 'hex').slice(0, 32);
    const at = this.deps.clock.now().toISOString();
    // Keyed by content, so a poison message redelivered many times is quarantined once.
    await this.deps.store.put(this.deps.table, {
      pk: `Q#${id}`,
      sk: 'Q',
      gsi1pk: 'QUARANTINE',
      gsi1sk: `${at}#${id}`,
      id,
      at,
      source: origin.source,
      stream: origin.stream,
      producer: origin.producer,
      sourceRef: item.sourceRef,
      where: item.where,
      field,
      reason,
      payload,
    });
    this.deps.log.warn('record quarantined', { source: origin.source, field, reason });
  }
}

/** Any input, even one nested too deep for JSON.stringify, becomes storable text. */
function serialise(raw: unknown): string {
  try {
    return JSON.stringify(raw ?? null) ?? 'null';
  } catch {
    return '[payload could not be serialised]';
  }
}

function truncate(text: string): string {
  if (text.length <= MAX_QUARANTINE_PAYLOAD) return text;
  return `${text.slice(0, MAX_QUARANTINE_PAYLOAD)}…[truncated ${text.length - MAX_QUARANTINE_PAYLOAD} chars]`;
}

/**
 * A producer's clock may run ahead, but not by more than a day: an access stamped years ahead
 * would fall outside every report's window until then. Before 1970 is no access to a record
 * kept electronically.
 */
export const MAX_CLOCK_AHEAD_MS = 24 * 60 * 60 * 1000;
const EARLIEST_MS = Date.UTC(1970, 0, 1);

function outOfTime(timestamp: string, now: number): { field: string; reason: string } | undefined {
  const at = Date.parse(timestamp);
  if (at > now + MAX_CLOCK_AHEAD_MS) {
    return { field: 'timestamp', reason: "is more than a day ahead: check the producer's clock" };
  }
  if (at < EARLIEST_MS) return { field: 'timestamp', reason: 'is before 1970' };
  return undefined;
}
