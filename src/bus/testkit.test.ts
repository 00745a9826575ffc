import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { probeTcp, waitFor } from './testkit.js';

describe('testkit', () => {
  it('probes a TCP server: reachable while it listens, not after it closed', async () => {
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    expect(await probeTcp('Test server', '127.0.0.1', port)).toEqual({ name: 'Test server', available: true, detail: 'reachable' });
    await new Promise((resolve) => server.close(resolve));
    expect(await probeTcp('Test server', '127.0.0.1', port)).toMatchObject({ name: 'Test server', available: false, detail: expect.stringContaining('ECONNREFUSED') as string });
  });

  it('waits for a condition, and names what it waited for when the deadline passes', async () => {
    let ready = false;
    setImmediate(() => (ready = true));
    await waitFor(() => ready, 'the flag');
    await expect(waitFor(() => false, 'something that never happens', 20)).rejects.toThrow('timed out after 20 ms waiting for something that never happens');
  });
});
