import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { LogRecord, LogRejection, LogSink, ProbeResult } from '../ports';

/**
 * The local log sink: one NDJSON file per log under the data directory, opened only for
 * appending. Each append is a single write, so concurrent writers never interleave lines.
 */
export class FileLogSink implements LogSink {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly directory: string) {
    fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
  }

  async probe(): Promise<ProbeResult> {
    await fs.promises.access(this.directory, fs.constants.W_OK);
    return 'ok';
  }

  fileOf(log: string): string {
    if (!/^[a-z0-9-]+$/.test(log)) throw new Error(`invalid log name: ${log}`);
    return path.join(this.directory, `${log}.ndjson`);
  }

  append(log: string, records: LogRecord[]): Promise<{ rejected: LogRejection[] }> {
    const file = this.fileOf(log);
    const text = records.map((r) => JSON.stringify({ t: r.timestamp, m: r.message })).join('\n');
    const write = this.queue.then(async () => {
      if (records.length > 0) await fs.promises.appendFile(file, `${text}\n`, { mode: 0o600 });
      return { rejected: [] };
    });
    this.queue = write.catch(() => undefined);
    return write;
  }

  async *read(log: string): AsyncIterable<LogRecord> {
    const file = this.fileOf(log);
    if (!fs.existsSync(file)) return;
    const lines = readline.createInterface({
      input: fs.createReadStream(file),
      crlfDelay: Infinity,
    });
    for await (const line of lines) {
      if (!line) continue;
      yield recordOf(line);
    }
  }
}

/** A line that is not a record (cut short by a crash, or edited) is passed on as it is. */
function recordOf(line: string): LogRecord {
  try {
    const parsed = JSON.parse(line) as { t: number; m: string };
    if (typeof parsed.m === 'string') return { timestamp: Number(parsed.t), message: parsed.m };
  } catch {
    // falls through
  }
  return { timestamp: Number.NaN, message: line };
}
