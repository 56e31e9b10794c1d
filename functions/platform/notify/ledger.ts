import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Notification, Notifier, ProbeResult } from '../ports';

/**
 * The local notifier: every notification is appended to a ledger file, the evidence that it
 * was sent, and echoed to the terminal for whoever is on call at this machine.
 */
export class LedgerNotifier implements Notifier {
  private readonly file: string;

  constructor(
    directory: string,
    private readonly echo: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {
    fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
    this.file = path.join(directory, 'notifications.ndjson');
  }

  async probe(): Promise<ProbeResult> {
    await fs.promises.access(path.dirname(this.file), fs.constants.W_OK);
    return 'ok';
  }

  async publish(notification: Notification): Promise<{ id: string }> {
    const id = randomUUID();
    const entry = { id, sentAt: new Date().toISOString(), ...notification };
    await fs.promises.appendFile(this.file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    this.echo(`[notify:${notification.topic}] ${notification.subject}`);
    return { id };
  }
}
