import {
  CreateTableCommand,
  DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import type { TableDefinition } from './definition';

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
  }
}
