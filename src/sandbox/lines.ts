/**
 * Turns a stream of text chunks into whole lines: a chunk may end in the middle of a line, or hold
 * many. Line ends are `\n` (a `\r` before it is dropped); a line longer than `maxLineLength` is passed
 * on in pieces of that length, so an agent that never prints a newline cannot grow memory without bound.
 */
export class LineSplitter {
  private partial = '';

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineLength = 64 * 1024,
  ) {}

  /** Adds a chunk; calls `onLine` for every line it completes. */
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const part of parts) this.onLine(part.endsWith('\r') ? part.slice(0, -1) : part);
    while (this.partial.length > this.maxLineLength) {
      this.onLine(this.partial.slice(0, this.maxLineLength));
      this.partial = this.partial.slice(this.maxLineLength);
    }
  }

  /** Passes on what is left after the last line end (at the end of the stream), if anything. */
  flush(): void {
    if (this.partial.length === 0) return;
    const rest = this.partial;
    this.partial = '';
    this.onLine(rest);
  }
}

/** The last `limit` lines seen, oldest first. */
export class LineTail {
  private readonly kept: string[] = [];

  constructor(private readonly limit: number) {}

  push(line: string): void {
    this.kept.push(line);
    if (this.kept.length > this.limit) this.kept.splice(0, this.kept.length - this.limit);
  }

  /** A copy of the kept lines. */
  lines(): string[] {
    return [...this.kept];
  }
}
