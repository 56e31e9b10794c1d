/**
 * Progress on standard error: a live bar on a terminal, a line every few seconds otherwise,
 * so long ingests and verifications show they are moving without flooding a log.
 */
export class Progress {
  private readonly started = Date.now();
  private lastPrint = 0;
  private done = 0;

  constructor(
    private readonly label: string,
    private readonly total?: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  advance(by = 1): void {
    this.done += by;
    const now = Date.now();
    if (now - this.lastPrint < (this.stream.isTTY ? 100 : 5000)) return;
    this.lastPrint = now;
    this.print(false);
  }

  finish(): void {
    this.print(true);
  }

  private print(final: boolean): void {
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const rate = Math.round(this.done / seconds);
    const fraction = this.total ? Math.min(1, this.done / this.total) : undefined;
    const bar =
      fraction === undefined ? '' : `[${'#'.repeat(Math.round(fraction * 30)).padEnd(30, '.')}] `;
    const pct = fraction === undefined ? '' : ` (${Math.round(fraction * 100)}%)`;
    const text = `${this.label} ${bar}${this.done.toLocaleString('en-US')}${pct} · ${rate.toLocaleString('en-US')}/s`;
    if (this.stream.isTTY) this.stream.write(`\r${text}${final ? '\n' : ''}`);
    else this.stream.write(`${text}\n`);
  }
}
