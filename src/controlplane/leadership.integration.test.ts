// Two servers' control planes on one store, in this process (no deployment, so no sandboxes): one
// leads, the other follows and names it; the leader's control plane goes with its lease.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, silentLogger } from '../core/index.js';
import { type Store, openStore } from '../store/index.js';
import type { SwarmRuntime } from '../swarm/index.js';
import { compileEnvironments } from './environments.js';
import { NotLeaderError } from './errors.js';
import { ElectedControlPlane, type RoleChange } from './leadership.js';

describe('ElectedControlPlane', () => {
  let store: Store;
  const servers: ElectedControlPlane[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
    await store.close();
  });

  /** A server on `store` with a clock of its own; a runtime it never uses (nothing is deployed). */
  const server = (holder: string) => {
    const changes: RoleChange[] = [];
    const clock = new ManualClock(Date.UTC(2026, 11, 6));
    const elected = ElectedControlPlane.start({
      store,
      runtime: {} as SwarmRuntime,
      environments: compileEnvironments(),
      clock,
      logger: silentLogger,
      holder,
      url: `http://${holder}:7070`,
      onRoleChange: (change) => void changes.push(change),
    });
    servers.push(elected);
    return { elected, clock, changes };
  };

  it('one leads and serves its control plane; the other follows, refusing with the leader\'s URL; a clean close hands over', async () => {
    store = await openStore({ dataDir: 'memory' });
    const a = server('a');
    await vi.waitFor(() => expect(a.elected.role).toBe('leader'));
    expect(a.changes).toEqual([{ role: 'leader', epoch: 1, resumed: [] }]);
    expect(await a.elected.controlPlane().list()).toEqual([]);
    const b = server('b');
    await vi.waitFor(() => expect(b.changes).toHaveLength(1));
    const leader = { holder: 'a', url: 'http://a:7070', epoch: 1, expiresAt: expect.stringMatching(/Z$/) as unknown };
    expect(b.changes).toEqual([{ role: 'follower', leader }]);
    expect(b.elected.health()).toEqual({ role: 'follower', leader });
    expect(a.elected.health()).toEqual({ role: 'leader', leader });
    const refused = (() => {
      try {
        return b.elected.controlPlane();
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(NotLeaderError);
    expect(refused).toMatchObject({ retryable: true, leader: { holder: 'a', url: 'http://a:7070', epoch: 1 } });
    expect((refused as Error).message).toMatch(/^this server follows: a leads \(lease epoch 1, until \S+Z unless renewed\); send the request to its API at http:\/\/a:7070 \(--url http:\/\/a:7070\)$/);

    await a.elected.close();
    expect(a.elected.role).toBe('follower');
    b.clock.advance(1_000);
    await vi.waitFor(() => expect(b.elected.role).toBe('leader'));
    expect(b.changes.at(-1)).toEqual({ role: 'leader', epoch: 2, resumed: [] });
  });

  it('a leader whose lease another took steps its control plane down and follows, saying why', async () => {
    store = await openStore({ dataDir: 'memory' });
    const a = server('a');
    await vi.waitFor(() => expect(a.elected.role).toBe('leader'));
    const b = server('b');
    await vi.waitFor(() => expect(b.changes).toHaveLength(1));
    // a's renewals stop (its clock stands still) and its lease expires; b takes it; then a renews.
    await store.query("UPDATE control_plane_lease SET expires_at = now() - interval '1 millisecond'");
    b.clock.advance(1_000);
    await vi.waitFor(() => expect(b.elected.role).toBe('leader'));
    a.clock.advance(1_000);
    await vi.waitFor(() => expect(a.changes.at(-1)).toEqual({ role: 'follower', leader: null, deposed: 'b took it (epoch 2)' }));
    expect(a.elected.role).toBe('follower');
    expect(() => a.elected.controlPlane()).toThrow(NotLeaderError);
  });
});
