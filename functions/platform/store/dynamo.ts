import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConditionFailedError, type Item, type Key, type QueryInput, type Store } from '../ports';
import { assertStorable } from './rules';

/** BatchWriteItem takes at most 25 put requests; BatchGetItem at most 100 keys. */
export const BATCH_WRITE_LIMIT = 25;
export const BATCH_GET_LIMIT = 100;

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Unprocessed items are retried with exponential backoff and full jitter. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 25, maxDelayMs: 2_000 };

/**
 * The store port over the DynamoDB document client. The same adapter serves AWS and the
 * embedded server: only the client's endpoint differs.
 */
export class DynamoStore implements Store {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  async get(table: string, key: Key, consistent = true): Promise<Item | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: table, Key: key, ConsistentRead: consistent }),
    );
    return out.Item;
  }

  async put(table: string, item: Item, options: { ifAbsent?: boolean } = {}): Promise<void> {
    assertStorable(item);
    await conditional(() =>
      this.client.send(
        new PutCommand({
          TableName: table,
          Item: item,
          ConditionExpression: options.ifAbsent ? 'attribute_not_exists(pk)' : undefined,
        }),
      ),
    );
  }

  async update(
    table: string,
    key: Key,
    change: {
      set?: Item;
      remove?: string[];
      add?: Record<string, number>;
      expect?: Record<string, unknown>;
    },
  ): Promise<Item> {
    // Only the changed attributes are known here: their keys and size are checked before writing.
    assertStorable(change.set ?? {});
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    const removes: string[] = [];
    let n = 0;

    // Absent (undefined) fields are left out of the expression entirely, so no placeholder
    // ever names a value that is not there.
    for (const [name, value] of Object.entries(change.set ?? {})) {
      if (value === undefined) continue;
      names[`#n${n}`] = name;
      values[`:v${n}`] = value;
      sets.push(`#n${n} = :v${n}`);
      n += 1;
    }
    for (const name of change.remove ?? []) {
      names[`#n${n}`] = name;
      removes.push(`#n${n}`);
      n += 1;
    }
    const adds: string[] = [];
    for (const [name, by] of Object.entries(change.add ?? {})) {
      names[`#n${n}`] = name;
      values[`:v${n}`] = by;
      adds.push(`#n${n} :v${n}`);
      n += 1;
    }
    const conditions = expectations(change.expect ?? {}, names, values);

    const expression = [
      sets.length > 0 ? `SET ${sets.join(', ')}` : '',
      removes.length > 0 ? `REMOVE ${removes.join(', ')}` : '',
      adds.length > 0 ? `ADD ${adds.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    if (!expression) throw new Error('update needs at least one attribute to set or remove');

    const out = await conditional(() =>
      this.client.send(
        new UpdateCommand({
          TableName: table,
          Key: key,
          UpdateExpression: expression,
          ConditionExpression: conditions.length > 0 ? conditions.join(' AND ') : undefined,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: Object.keys(values).length > 0 ? values : undefined,
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return out.Attributes ?? {};
  }

  async delete(
    table: string,
    key: Key,
    options: { expect?: Record<string, unknown> } = {},
  ): Promise<void> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const conditions = expectations(options.expect ?? {}, names, values);
    await conditional(() =>
      this.client.send(
        new DeleteCommand({
          TableName: table,
          Key: key,
          ConditionExpression: conditions.length > 0 ? conditions.join(' AND ') : undefined,
          ExpressionAttributeNames: conditions.length > 0 ? names : undefined,
          ExpressionAttributeValues: Object.keys(values).length > 0 ? values : undefined,
        }),
      ),
    );
  }

  async *query(table: string, input: QueryInput): AsyncIterable<Item> {
    const names: Record<string, string> = { '#p': input.partition[0] };
    const values: Record<string, unknown> = { ':p': input.partition[1] };
    let condition = '#p = :p';
    if (input.between) {
      names['#s'] = input.between[0];
      values[':from'] = input.between[1];
      values[':to'] = input.between[2];
      condition += ' AND #s BETWEEN :from AND :to';
    } else if (input.after) {
      names['#s'] = input.after[0];
      values[':after'] = input.after[1];
      condition += ' AND #s > :after';
    }

    let remaining = input.limit ?? Number.POSITIVE_INFINITY;
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: table,
          IndexName: input.index,
          KeyConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ScanIndexForward: !input.descending,
          ConsistentRead: input.index ? undefined : input.consistent,
          ExclusiveStartKey: start,
          Limit: Number.isFinite(remaining) ? Math.min(remaining, 1000) : undefined,
        }),
      );
      for (const item of out.Items ?? []) {
        yield item;
        remaining -= 1;
        if (remaining <= 0) return;
      }
      start = out.LastEvaluatedKey;
    } while (start);
  }

  async batchGet(table: string, keys: Key[], consistent = true): Promise<Item[]> {
    const found: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_LIMIT) {
      let pending: Key[] = keys.slice(i, i + BATCH_GET_LIMIT);
      for (let attempt = 0; pending.length > 0; attempt += 1) {
        if (attempt > 0) await this.backoff(attempt);
        if (attempt >= this.retry.attempts) throw new Error('BatchGetItem kept unprocessed keys');
        const out = await this.client.send(
          new BatchGetCommand({
            RequestItems: { [table]: { Keys: pending, ConsistentRead: consistent } },
          }),
        );
        found.push(...(out.Responses?.[table] ?? []));
        pending = (out.UnprocessedKeys?.[table]?.Keys as Key[] | undefined) ?? [];
      }
    }
    return found;
  }

  async batchPut(table: string, items: Item[]): Promise<{ unprocessed: Item[] }> {
    items.forEach(assertStorable);
    const chunks: Item[][] = [];
    for (let i = 0; i < items.length; i += BATCH_WRITE_LIMIT) {
      chunks.push(items.slice(i, i + BATCH_WRITE_LIMIT));
    }
    const results = await Promise.all(chunks.map((chunk) => this.writeChunk(table, chunk)));
    return { unprocessed: results.flat() };
  }

  async *scan(table: string): AsyncIterable<Item> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({ TableName: table, ExclusiveStartKey: start }),
      );
      yield* out.Items ?? [];
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /** Writes one chunk; returns what was still unprocessed once the retries ran out. */
  private async writeChunk(table: string, chunk: Item[]): Promise<Item[]> {
    let pending = chunk;
    for (let attempt = 0; attempt < this.retry.attempts; attempt += 1) {
      if (attempt > 0) await this.backoff(attempt);
      const out = await this.client.send(
        new BatchWriteCommand({
          RequestItems: { [table]: pending.map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
      const left = out.UnprocessedItems?.[table] ?? [];
      pending = left.map((request) => request.PutRequest?.Item as Item).filter(Boolean);
      if (pending.length === 0) return [];
    }
    return pending;
  }

  private async backoff(attempt: number): Promise<void> {
    const cap = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** attempt);
    await sleep(Math.random() * cap);
  }
}

/**
 * Condition clauses for `expect`: each attribute must equal its value, or be absent when the
 * value is undefined. Placeholders are added to `names` and `values` under their own prefix,
 * so they never collide with those of an update expression.
 */
function expectations(
  expect: Record<string, unknown>,
  names: Record<string, string>,
  values: Record<string, unknown>,
): string[] {
  return Object.entries(expect).map(([name, value], i) => {
    names[`#c${i}`] = name;
    if (value === undefined) return `attribute_not_exists(#c${i})`;
    values[`:c${i}`] = value;
    return `#c${i} = :c${i}`;
  });
}

async function conditional<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if ((error as { name?: string }).name === 'ConditionalCheckFailedException') {
      throw new ConditionFailedError();
    }
    throw error;
  }
}
