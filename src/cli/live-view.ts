// The status `tandem up` shows: on a terminal, one block redrawn in place (the table and the
// latest events); into a pipe or file, each change printed once, events as lines.
const SHOWN_EVENTS = 8;

export class LiveView {
  private drawnLines = 0;
  private table = '';
  private readonly events: string[] = [];

  constructor(private readonly out: NodeJS.WriteStream) {}

  event(line: string): void {
    if (!this.out.isTTY) {
      this.out.write(`${line}\n`);
      return;
    }
    this.events.push(line);
    if (this.events.length > SHOWN_EVENTS) this.events.shift();
    this.redraw();
  }

  /** Returns whether the table changed. */
  status(table: string): boolean {
    if (table === this.table) return false;
    this.table = table;
    if (this.out.isTTY) this.redraw();
    else this.out.write(`\n${table}\n\n`);
    return true;
  }

  /** Anything printed after this goes below the block, which stays as it was. */
  release(): void {
    this.drawnLines = 0;
  }

  private redraw(): void {
    const block = `${this.table}\n${this.events.length > 0 ? `\n${this.events.join('\n')}\n` : ''}`;
    const width = this.out.columns || 200;
    // Long lines wrap: count the rows they take, so the cursor goes back up exactly.
    const rows = block
      .split('\n')
      .slice(0, -1)
      .reduce((n, l) => n + Math.max(1, Math.ceil(l.length / width)), 0);
    this.out.write(`${this.drawnLines > 0 ? `\x1b[${this.drawnLines}A\x1b[0J` : ''}${block}`);
    this.drawnLines = rows;
  }
}
