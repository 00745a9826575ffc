import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../core/index.js';
import {
  MAX_SEGMENT_LENGTH,
  TOPIC_KINDS,
  TOPIC_PUBLISHERS,
  parseSharedFilter,
  parseTopic,
  sharedFilter,
  swarmIdOf,
  swarmTopicFilter,
  swarmTopics,
  filtersOverlap,
  topicMatches,
  validateTopicFilter,
  validateTopicName,
} from './topics.js';

/** The field an InvalidInputError names, or a description of what else happened. */
function fieldOf(call: () => unknown): string {
  try {
    call();
  } catch (error) {
    return error instanceof InvalidInputError ? error.field : `not an InvalidInputError: ${String(error)}`;
  }
  return 'no error';
}

describe('swarmTopics', () => {
  const t = swarmTopics('alpha');

  it.each([
    ['all()', t.all(), 'ts/alpha/#'],
    ['bar', t.bar('AAPL'), 'ts/alpha/bar/AAPL'],
    ['bar with a dot', t.bar('BRK.B'), 'ts/alpha/bar/BRK.B'],
    ['allBars', t.allBars(), 'ts/alpha/bar/+'],
    ['marketBars', t.marketBars(), 'ts/alpha/market/bars'],
    ['signal', t.signal('momentum-1'), 'ts/alpha/signal/momentum-1'],
    ['allSignals', t.allSignals(), 'ts/alpha/signal/+'],
    ['vote', t.vote('a1'), 'ts/alpha/vote/a1'],
    ['allVotes', t.allVotes(), 'ts/alpha/vote/+'],
    ['decision', t.decision('hub'), 'ts/alpha/decision/hub'],
    ['allDecisions', t.allDecisions(), 'ts/alpha/decision/+'],
    ['order', t.order('a1'), 'ts/alpha/order/a1'],
    ['allOrders', t.allOrders(), 'ts/alpha/order/+'],
    ['fill', t.fill('a1'), 'ts/alpha/fill/a1'],
    ['allFills', t.allFills(), 'ts/alpha/fill/+'],
    ['heartbeat', t.heartbeat('a1'), 'ts/alpha/heartbeat/a1'],
    ['allHeartbeats', t.allHeartbeats(), 'ts/alpha/heartbeat/+'],
    ['checkpoint', t.checkpoint('a1'), 'ts/alpha/checkpoint/a1'],
    ['allCheckpoints', t.allCheckpoints(), 'ts/alpha/checkpoint/+'],
    ['control', t.control('a1'), 'ts/alpha/control/agent/a1'],
    ['controlAll', t.controlAll(), 'ts/alpha/control/all'],
    ['control of an agent named all', t.control('all'), 'ts/alpha/control/agent/all'],
    ['allControl', t.allControl(), 'ts/alpha/control/#'],
    ['inbox', t.inbox('a1'), 'ts/alpha/inbox/a1'],
    ['reply', t.reply('ts-client7'), 'ts/alpha/reply/ts-client7'],
    ['work', t.work('orders'), 'ts/alpha/work/orders'],
    ['sharedWork', t.sharedWork('executors', 'orders'), '$share/executors/ts/alpha/work/orders'],
    ['swarmTopicFilter', swarmTopicFilter('alpha'), 'ts/alpha/#'],
    ['sharedFilter', sharedFilter('g', 'ts/alpha/bar/+'), '$share/g/ts/alpha/bar/+'],
  ])('%s builds %s', (_name, built, expected) => {
    expect(built).toBe(expected);
  });

  it('gives an agent the two control filters it listens on', () => {
    expect(t.controlFilters('a1')).toEqual(['ts/alpha/control/agent/a1', 'ts/alpha/control/all']);
    expect(t.swarmId).toBe('alpha');
    expect(Object.isFrozen(t)).toBe(true);
  });

  const bad: [string, unknown, RegExp][] = [
    ['empty', '', /must be a non-empty string, got ""/],
    ['not a string', 42, /must be a non-empty string, got number/],
    ['a slash', 'BRK/B', /must not contain '\/'.*use another separator/],
    ['a plus', 'a+b', /must not contain '\+'/],
    ['a hash', 'a#', /must not contain '#'/],
    ['NUL', 'a\u0000b', /must not contain NUL/],
    ['a tab', 'a\tb', /control characters/],
    ['a leading $', '$SYS', /must not start with '\$'/],
    ['too long', 'x'.repeat(MAX_SEGMENT_LENGTH + 1), /must be at most 128 characters, got 129/],
  ];
  const builders: [string, (value: string) => unknown][] = [
    ['swarmId', (value) => swarmTopics(value)],
    ['swarmId', (value) => swarmTopicFilter(value)],
    ['symbol', (value) => t.bar(value)],
    ['agentId', (value) => t.signal(value)],
    ['agentId', (value) => t.vote(value)],
    ['agentId', (value) => t.decision(value)],
    ['agentId', (value) => t.order(value)],
    ['agentId', (value) => t.fill(value)],
    ['agentId', (value) => t.heartbeat(value)],
    ['agentId', (value) => t.checkpoint(value)],
    ['agentId', (value) => t.control(value)],
    ['agentId', (value) => t.controlFilters(value)],
    ['agentId', (value) => t.inbox(value)],
    ['clientId', (value) => t.reply(value)],
    ['queue', (value) => t.work(value)],
    ['queue', (value) => t.sharedWork('g', value)],
    ['group', (value) => t.sharedWork(value, 'q')],
    ['group', (value) => sharedFilter(value, 'ts/a/#')],
  ];

  it.each(bad)('refuses a segment with %s, naming the field in every builder', (_what, value, message) => {
    for (const [field, build] of builders) {
      expect(fieldOf(() => build(value as string))).toBe(field);
      expect(() => build(value as string)).toThrow(message);
    }
  });

  it('accepts a segment of exactly the maximum length', () => {
    expect(t.bar('x'.repeat(MAX_SEGMENT_LENGTH))).toBe(`ts/alpha/bar/${'x'.repeat(MAX_SEGMENT_LENGTH)}`);
  });
});

describe('topic and filter validation', () => {
  it.each([
    ['ts/a/bar/AAPL', 'no error'],
    ['anything/at/all', 'no error'],
    ['', 'topic'],
    ['ts/a/bar/+', 'topic'],
    ['ts/a/#', 'topic'],
    ['ts/a\u0000', 'topic'],
    ['x'.repeat(65_536), 'topic'],
  ])('validateTopicName(%j) -> %s', (topic, expected) => {
    expect(fieldOf(() => validateTopicName(topic))).toBe(expected);
  });

  it.each([
    ['ts/a/#', 'no error'],
    ['#', 'no error'],
    ['+/+/+', 'no error'],
    ['ts/+/bar/+', 'no error'],
    ['$share/g/ts/a/work/+', 'no error'],
    ['ts/a/#/b', 'filter'],
    ['ts/a/b#', 'filter'],
    ['ts/a+/b', 'filter'],
    ['', 'filter'],
    ['$share/g', 'filter'],
    ['$share//ts/a', 'filter'],
    ['$share/g/', 'filter'],
    ['$share/g+/ts/a', 'filter.group'],
    ['$share/g/ts/a#', 'filter'],
    ['$share/g/$share/h/ts/a', 'filter'],
  ])('validateTopicFilter(%j) -> %s', (filter, expected) => {
    expect(fieldOf(() => validateTopicFilter(filter))).toBe(expected);
  });

  it('refuses a shared filter where a plain one is expected', () => {
    expect(() => sharedFilter('g', '$share/h/ts/a/#')).toThrow(/^filter: is already a shared filter/);
  });
});

describe('topicMatches', () => {
  it.each([
    ['ts/a/bar/+', 'ts/a/bar/AAPL', true],
    ['ts/a/bar/+', 'ts/a/bar/AAPL/1m', false],
    ['ts/a/bar/+', 'ts/a/bar', false],
    ['ts/a/#', 'ts/a/bar/AAPL/1m', true],
    ['ts/a/#', 'ts/a', true],
    ['ts/a/#', 'ts/ab/x', false],
    ['#', 'ts/a/b', true],
    ['#', '$SYS/broker', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/broker/uptime', true],
    ['ts/+/bar/+', 'ts/b/bar/X', true],
    ['ts/a/bar/AAPL', 'ts/a/bar/AAPL', true],
    ['ts/a/bar/AAPL', 'ts/a/bar/MSFT', false],
    ['ts/a/+', 'ts/a/', true], // an empty level is a level
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe('filtersOverlap', () => {
  it.each([
    ['ts/a/#', 'ts/a/work/q', true],
    ['ts/a/work/q', 'ts/a/#', true],
    ['ts/a/#', 'ts/a', true],
    ['ts/a/+/q', 'ts/a/work/+', true],
    ['ts/a/work/q', 'ts/a/work/q', true],
    ['ts/a/work/q', 'ts/a/work/r', false],
    ['ts/a/+', 'ts/a/work/q', false],
    ['ts/a/work', 'ts/a/work/q', false],
    ['ts/b/#', 'ts/a/#', false],
    ['#', 'anything', true],
  ])('%s and %s overlap: %s', (a, b, expected) => {
    expect(filtersOverlap(a, b)).toBe(expected);
  });
});

describe('parseSharedFilter and swarmIdOf', () => {
  it('splits a shared filter and leaves a plain one alone', () => {
    expect(parseSharedFilter('$share/workers/ts/a/work/q')).toEqual({ group: 'workers', filter: 'ts/a/work/q' });
    expect(parseSharedFilter('ts/a/work/q')).toBeUndefined();
  });

  it.each([
    ['ts/alpha/bar/AAPL', 'alpha'],
    ['ts/alpha/#', 'alpha'],
    ['$share/g/ts/alpha/work/q', 'alpha'],
    ['ts/+/bar/x', undefined],
    ['ts/#', undefined],
    ['ts/alpha', undefined],
    ['other/alpha/x', undefined],
    ['$share/g', undefined],
  ])('swarmIdOf(%j) is %j', (topic, expected) => {
    expect(swarmIdOf(topic)).toBe(expected);
  });
});

describe('parseTopic', () => {
  const t = swarmTopics('alpha');

  it.each([
    [t.step(), 'step', undefined],
    [t.bar('BRK.B'), 'bar', 'BRK.B'],
    [t.marketBars(), 'market', undefined],
    [t.signal('a1'), 'signal', 'a1'],
    [t.vote('a1'), 'vote', 'a1'],
    [t.decision('a1'), 'decision', 'a1'],
    [t.order('a1'), 'order', 'a1'],
    [t.fill('a1'), 'fill', 'a1'],
    [t.heartbeat('a1'), 'heartbeat', 'a1'],
    [t.checkpoint('a1'), 'checkpoint', 'a1'],
    [t.control('a1'), 'control', 'a1'],
    [t.control('all'), 'control', 'all'],
    [t.controlAll(), 'control', undefined],
    [t.inbox('a1'), 'inbox', 'a1'],
    [t.reply('ts-client7'), 'reply', 'ts-client7'],
    [t.work('orders'), 'work', 'orders'],
  ])('takes %s apart into its kind %s and name %s', (topic, kind, name) => {
    expect(parseTopic(topic)).toEqual({ swarmId: 'alpha', kind, name });
  });

  it.each([
    'ts/alpha',
    'ts/alpha/step/x',
    'ts/alpha/signal',
    'ts/alpha/signal/a1/extra',
    'ts/alpha/signal/+',
    'ts/alpha/signal/#',
    'ts/alpha/signal/',
    'ts/alpha/signal/$a1',
    'ts/alpha/control/agent',
    'ts/alpha/control/other/a1',
    'ts/alpha/control/all/x',
    'ts/alpha/market/other',
    'ts/alpha/market/bars/x',
    'ts/alpha/nonsense/a1',
    'ts/+/signal/a1',
    'ts//signal/a1',
    'other/alpha/signal/a1',
    '$share/g/ts/alpha/work/q',
  ])('refuses %j', (topic) => {
    expect(parseTopic(topic)).toBeUndefined();
  });

  it('names who publishes on every kind', () => {
    expect(Object.keys(TOPIC_PUBLISHERS).sort()).toEqual([...TOPIC_KINDS].sort());
    const owned = TOPIC_KINDS.filter((kind) => TOPIC_PUBLISHERS[kind] === 'owner');
    expect(owned).toEqual(['signal', 'vote', 'decision', 'order', 'heartbeat', 'checkpoint']);
  });
});
