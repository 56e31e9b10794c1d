import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, silentLog } from '../../functions/platform/logger';
import { type Platform, startPlatform } from '../../functions/platform/local/platform';
import { runtime } from '../../functions/platform/runtime';
import { auditLog, resetAuditLog } from '../../functions/audit/context';
import type { NativeEvent } from '../../functions/audit/event';
import { Producers } from '../../functions/audit/producers';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface TestPlatform {
  platform: Platform;
  dataDir: string;
  producerKey: string;
  readerKey: string;
  stop(): Promise<void>;
}

/** Starts the whole local platform on free loopback ports with an in-memory store. */
export async function startTestPlatform(
  options: { corsOrigins?: string } = {},
): Promise<TestPlatform> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-test-'));
  resetAuditLog();
  const platform = await startPlatform({
    root: ROOT,
    dataDir,
    port: 0,
    invokePort: 0,
    inMemory: true,
    schedules: false,
    corsOrigins: options.corsOrigins ?? 'https://console.example.test',
    // CI runs this suite once more against DynamoDB Local; each platform gets its own table.
    dynamoEndpoint: process.env.VIGIL_TEST_DYNAMODB_ENDPOINT,
    tableSuffix: path.basename(dataDir).replace(/[^A-Za-z0-9-]/g, ''),
    log: process.env.VIGIL_TEST_LOG ? createLogger() : silentLog,
  });
  const rt = runtime();
  const producers = new Producers(rt.store, rt.config.auditTable, rt.clock);
  const { apiKey: producerKey } = await producers.create('test-producer');
  const { apiKey: readerKey } = await producers.create('test-reader', 'reader');
  return {
    platform,
    dataDir,
    producerKey,
    readerKey,
    stop: async () => {
      await platform.stop();
      resetAuditLog();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function call(
  base: string,
  method: string,
  route: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers['x-api-key'] = options.key;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  // Redirects are answers to check, and may point off this machine: never followed.
  const response = await fetch(`${base}${route}`, { method, headers, body, redirect: 'manual' });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json: json as any }; // eslint-disable-line @typescript-eslint/no-explicit-any -- test responses
}

export function nativeEvent(overrides: Record<string, unknown> = {}) {
  return {
    userId: 'dr-house',
    userRole: 'physician',
    action: 'view',
    resourceType: 'Observation',
    resourceId: 'obs-1',
    patientId: 'p-100',
    fieldsAccessed: ['valueQuantity'],
    ipAddress: '10.1.2.3',
    userAgent: 'EHR/1.0',
    timestamp: '2026-11-30T09:15:00-05:00',
    sessionId: 's-1',
    purposeOfUse: 'TREAT',
    reason: 'follow-up',
    application: 'ehr',
    device: 'ws-12',
    outcome: 'success',
    ...overrides,
  };
}

/**
 * Appends `count` numbered events (`<stream>-<n>`, resource `obs-<n>` from `from` on) to a
 * stream straight through the audit service, as the CLI does.
 */
export async function ingestNumbered(
  stream: string,
  from: number,
  count: number,
  options: { producer?: string; checkpoint?: boolean } = {},
): Promise<void> {
  const items = Array.from({ length: count }, (_, i) => ({
    ref: i,
    decoded: {
      format: 'native' as const,
      parsed: {
        ok: true as const,
        value: nativeEvent({
          id: `${stream}-${from + i}`,
          resourceId: `obs-${from + i}`,
        }) as NativeEvent,
      },
    },
  }));
  await auditLog().ingest({ source: 'cli', stream, producer: options.producer ?? 'test' }, items, {
    checkpoint: options.checkpoint,
  });
}
