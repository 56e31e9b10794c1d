import { auditLog } from '../../functions/audit/context';
import { exportLines, verifyExport } from '../../functions/audit/export';
import { linkHash } from '../../functions/audit/chain/hashes';
import { runtime } from '../../functions/platform/runtime';
import { ingestNumbered, startTestPlatform, type TestPlatform } from '../support/platform';

/** An export vouches for what is signed, and only for that: checks made offline, from the file. */
describe('verifying an export offline', () => {
  let t: TestPlatform;

  const ingest = (stream: string, from: number, count: number, checkpoint = true) =>
    ingestNumbered(stream, from, count, { producer: 'export-test', checkpoint });

  async function exported(): Promise<string[]> {
    const rt = runtime();
    const lines: string[] = [];
    const sources = {
      store: rt.store,
      table: rt.config.auditTable,
      sink: rt.sink,
      signer: rt.signer,
    };
    for await (const line of exportLines(sources)) lines.push(line);
    return lines;
  }

  const verify = async (lines: string[]) =>
    verifyExport(
      (async function* () {
        yield lines.join('\n');
      })(),
      await runtime().signer.publicKeyPem(),
    );

  beforeEach(async () => {
    t = await startTestPlatform();
    await ingest('e', 1, 5);
  });
  afterEach(() => t.stop());

  it('verifies an untouched export, leaving out entries no checkpoint has signed yet', async () => {
    await ingest('e', 6, 3, false); // not yet signed
    const lines = await exported();

    const report = await verify(lines);

    expect(report.ok).toBe(true);
    expect(report.streams.find((s) => s.stream === 'e')).toMatchObject({
      entries: 5,
      unattested: 0,
    });
  });

  it('takes in the newest entries once the heads are signed', async () => {
    await ingest('e', 6, 3, false);
    await auditLog().checkpointAll();

    const report = await verify(await exported());

    expect(report.ok).toBe(true);
    expect(report.streams.find((s) => s.stream === 'e')?.entries).toBe(8);
  });

  it('fails an export whose checkpoints were taken out', async () => {
    const lines = (await exported()).filter((line) => !line.startsWith('{"type":"checkpoint"'));

    const report = await verify(lines);

    expect(report.ok).toBe(false);
    expect(report.firstProblem).toMatchObject({ stream: 'e', kind: 'unsigned', seq: 1 });
  });

  it('fails an entry rewritten with its chain recomputed once the checkpoints are gone', async () => {
    const lines = (await exported()).filter((line) => !line.startsWith('{"type":"checkpoint"'));
    // Rewrite entry 3 and relink everything after it, as a forger with the file would.
    let prev: string | undefined;
    const forged = lines.map((line) => {
      if (!line.startsWith('{"type":"entry"')) return line;
      const mark = ',"record":';
      const meta = JSON.parse(`${line.slice(0, line.indexOf(mark))}}`) as Record<string, unknown>;
      const record = line.slice(line.indexOf(mark) + mark.length, -1);
      const body = meta.seq === 3 ? record.replace('obs-3', 'obs-X') : record;
      const prevHash = prev ?? String(meta.prevHash);
      const hash = linkHash(prevHash, body);
      prev = hash;
      return `${JSON.stringify({ ...meta, hash, prevHash }).slice(0, -1)}${mark}${body}}`;
    });
    expect(forged.join('\n')).toContain('obs-X');

    const report = await verify(forged);

    // The relinked chain holds together: only the missing signature gives the forgery away.
    expect(report.ok).toBe(false);
    const kinds = report.streams.find((s) => s.stream === 'e')?.problems.map((p) => p.kind);
    expect(kinds).toEqual(['unsigned']);
  });
});
