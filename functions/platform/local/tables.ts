import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import type { Config } from '../config';
import type { TableDefinition } from './definition';

/** Logical table ids in serverless.yml and the names they have locally. */
export function localTableNames(config: Config): Record<string, string> {
  return { AuditTable: config.auditTable, IdentityTable: config.identityTable };
}

/**
 * Creates the tables declared in serverless.yml on the embedded server, under their local
 * names. Properties the emulator has no use for (encryption, recovery, protection, TTL) are
 * left out; keys and indexes are taken as declared.
 */
export async function ensureTables(
  client: DynamoDBClient,
  tables: TableDefinition[],
  localNames: Record<string, string>,
): Promise<void> {
  for (const table of tables) {
    const name = localNames[table.logicalId];
    if (!name) throw new Error(`no local name for table ${table.logicalId}`);
    const p = table.properties as Record<string, never>;
    try {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: p.AttributeDefinitions,
          KeySchema: p.KeySchema,
          GlobalSecondaryIndexes: p.GlobalSecondaryIndexes,
        }),
      );
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    await untilActive(client, name);
  }
}

/** A new table may be listed a moment before it takes writes; wait until it is ACTIVE. */
async function untilActive(client: DynamoDBClient, name: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const out = await client.send(new DescribeTableCommand({ TableName: name }));
    const indexes = out.Table?.GlobalSecondaryIndexes ?? [];
    if (out.Table?.TableStatus === 'ACTIVE' && indexes.every((i) => i.IndexStatus === 'ACTIVE'))
      return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`table ${name} did not become active`);
}
