import { describe, expect, it } from 'vitest';
import { LineSplitter, LineTail } from './lines.js';

function split(chunks: readonly string[], maxLineLength?: number): { beforeFlush: string[]; all: string[] } {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), maxLineLength);
  for (const chunk of chunks) splitter.push(chunk);
  const beforeFlush = [...lines];
  splitter.flush();
  return { beforeFlush, all: lines };
}

describe('LineSplitter', () => {
  it.each([
    { name: 'one chunk, one line', chunks: ['a\n'], beforeFlush: ['a'], all: ['a'] },
    { name: 'many lines in one chunk', chunks: ['a\nb\nc\n'], beforeFlush: ['a', 'b', 'c'], all: ['a', 'b', 'c'] },
    { name: 'a line split over chunks', chunks: ['{"x":', '1}', '\nnext'], beforeFlush: ['{"x":1}'], all: ['{"x":1}', 'next'] },
    { name: 'a chunk that is only a line end', chunks: ['abc', '\n'], beforeFlush: ['abc'], all: ['abc'] },
    { name: 'empty lines are kept', chunks: ['\n\nx\n'], beforeFlush: ['', '', 'x'], all: ['', '', 'x'] },
    { name: 'CRLF line ends', chunks: ['a\r\nb\r', '\n'], beforeFlush: ['a', 'b'], all: ['a', 'b'] },
    { name: 'no output', chunks: [], beforeFlush: [], all: [] },
    { name: 'an unterminated last line comes on flush', chunks: ['done'], beforeFlush: [], all: ['done'] },
  ])('$name', ({ chunks, beforeFlush, all }) => {
    expect(split(chunks)).toEqual({ beforeFlush, all });
  });

  it('passes on an over-long line in pieces of maxLineLength', () => {
    expect(split(['abcdefg', 'h\n'], 3)).toEqual({ beforeFlush: ['abc', 'def', 'gh'], all: ['abc', 'def', 'gh'] });
  });
});

describe('LineTail', () => {
  it('keeps the last lines, oldest first, and hands out copies', () => {
    const tail = new LineTail(2);
    expect(tail.lines()).toEqual([]);
    for (const line of ['1', '2', '3']) tail.push(line);
    const lines = tail.lines();
    lines.push('mutated');
    expect(tail.lines()).toEqual(['2', '3']);
  });
});
