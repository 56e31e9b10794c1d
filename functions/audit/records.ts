import crypto from 'node:crypto';
import type { NativeEvent } from './event';
import { canonicalize } from './chain/canonical';
import type { Item, Store } from '../platform/ports';

/** Where an event came in. */
export type Source = 'http' | 'sqs' | 'kinesis' | 'logs' | 'cli' | 'api';
export type Format = 'native' | 'fhir-r4' | 'fhir-stu3' | 'fhir-dstu2' | 'atna';

/** An event ready to be appended: validated, with its stream and dedupe key decided. */
export interface Candidate {
  id: string;
  eventKey: string;
  stream: string;
  source: Source;
  producer: string;
  format: Format;
  event: NativeEvent;
}

/** What the chain link covers: everything about the event, including its place in the stream. */
export interface EntryBody extends Candidate {
  seq: number;
  receivedAt: string;
}

/** A stored entry as the verifier and the query side see it. */
export interface Entry {
  body: string;
  hash: string;
  prevHash: string;
  seq: number;
  stream: string;
}

export const SEQ_WIDTH = 16;
export const padSeq = (seq: number): string => String(seq).padStart(SEQ_WIDTH, '0');

export const entryKey = (id: string) => ({ pk: `E#${id}`, sk: 'E' });
export const headKey = (stream: string) => ({ pk: `H#${stream}`, sk: 'H' });
export const HEADS_PARTITION = 'HEADS';
/**
 * The registry of streams: one small item per stream, indexed under HEADS. The head itself
 * stays out of every index, since it carries the batch being committed.
 */
export const streamRegistryItem = (stream: string) => ({
  pk: `R#${stream}`,
  sk: 'R',
  gsi1pk: HEADS_PARTITION,
  gsi1sk: stream,
  stream,
});

export async function* listStreams(store: Store, table: string): AsyncIterable<string> {
  for await (const item of store.query(table, {
    index: 'gsi1',
    partition: ['gsi1pk', HEADS_PARTITION],
  })) {
    yield String(item.gsi1sk);
  }
}

/**
 * The dedupe key: the producer's own event id when it sends one, else the source's id for the
 * record (a Kinesis shard and sequence number, a log event id, a queue message id), else the
 * hash of the canonical event. Redelivery of the same event always yields the same key.
 */
export function eventKeyOf(event: NativeEvent, producer: string, sourceRef?: string): string {
  if (event.id) return `id:${producer}:${event.id}`;
  if (sourceRef) return `src:${sourceRef}`;
  return `sha256:${crypto.hash('sha256', canonicalize(event), 'hex')}`;
}

/** Record ids are fixed-length and URL-safe whatever the producer's ids look like. */
export function recordIdOf(eventKey: string): string {
  return crypto.hash('sha256', eventKey, 'hex').slice(0, 32);
}

export function utcOf(timestamp: string): string {
  return new Date(timestamp).toISOString();
}

/** The index attributes derived from an entry's body; the verifier re-derives and compares. */
export function indexAttributes(body: EntryBody): Item {
  const at = `${utcOf(body.event.timestamp)}#${body.id}`;
  const item: Item = {
    gsi1pk: `S#${body.stream}`,
    gsi1sk: padSeq(body.seq),
    gsi3pk: `U#${body.event.userId}`,
    gsi3sk: at,
    gsi4pk: `M#${at.slice(0, 7)}`,
    gsi4sk: at,
  };
  if (body.event.patientId) {
    item.gsi2pk = `P#${body.event.patientId}`;
    item.gsi2sk = at;
  }
  return item;
}

export function entryItem(body: EntryBody, canonicalBody: string, prevHash: string, hash: string) {
  return {
    ...entryKey(body.id),
    ...indexAttributes(body),
    stream: body.stream,
    seq: body.seq,
    body: canonicalBody,
    prevHash,
    hash,
  };
}
