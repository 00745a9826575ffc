import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';
import { InvalidInputError } from './errors.js';

/** The generator algorithm, recorded in every {@link RngState}. */
const ALGORITHM = 'xoroshiro128plus';

/** Outputs discarded after seeding: xoroshiro's first outputs from a sparse seed state are poorly mixed. */
const WARM_UP_DRAWS = 16;

/**
 * Everything needed to resume an {@link Rng} exactly where it stopped. Plain JSON: store it in a
 * checkpoint and hand it to {@link Rng.fromState}.
 */
export interface RngState {
  readonly algorithm: typeof ALGORITHM;
  /** The 32-bit stream key that {@link Rng.fork} derives children from. */
  readonly key: number;
  /** The generator's internal words (pure-rand `getState()`). */
  readonly generator: readonly number[];
  /** The second value of the last Box–Muller pair, not yet returned by `normal()`; `null` when none. */
  readonly spareNormal: number | null;
}

/**
 * A seeded source of randomness: the only randomness domain code may use (DESIGN decision 5).
 *
 * Built on pure-rand's xoroshiro128+ generator and its uniform distributions. The 32-bit key is
 * scrambled (murmur3 finaliser) before seeding and the first {@link WARM_UP_DRAWS} outputs are
 * dropped, so nearby seeds give unrelated streams. Not for secrets: use `randomId`/`randomToken`.
 *
 * An `Rng` is mutable (each draw advances it) and not shared between consumers: give each
 * consumer its own {@link Rng.fork} so that adding one does not shift the numbers of the others.
 */
export class Rng {
  private constructor(
    private readonly key: number,
    private readonly generator: JumpableRandomGenerator,
    private spareNormal: number | null,
  ) {}

  /**
   * A generator for `seed`. The same seed always gives the same sequence.
   * @param seed any safe integer; seeds are folded to 32 bits, so there are 2^32 distinct streams.
   * @throws InvalidInputError when `seed` is not a safe integer.
   */
  static seeded(seed: number): Rng {
    if (!Number.isSafeInteger(seed)) throw new InvalidInputError('seed', `must be a safe integer, got ${seed}`);
    const high = Math.floor(seed / 2 ** 32);
    // Seeds in [0, 2^32) map to themselves; larger or negative seeds fold their high word in.
    const key = (seed | 0) ^ (high === 0 ? 0 : fmix32(high));
    return Rng.fromKey(key);
  }

  /**
   * Resumes a generator saved by {@link Rng.state}.
   * @throws InvalidInputError when `state` was not produced by `state()`.
   */
  static fromState(state: RngState): Rng {
    const algorithm: unknown = state.algorithm;
    if (algorithm !== ALGORITHM) {
      throw new InvalidInputError('state.algorithm', `must be "${ALGORITHM}", got ${JSON.stringify(algorithm)}`);
    }
    if (!Number.isInteger(state.key)) throw new InvalidInputError('state.key', `must be an integer, got ${String(state.key)}`);
    if (state.generator.length !== 4 || !state.generator.every((word) => Number.isInteger(word))) {
      throw new InvalidInputError('state.generator', 'must be the 4 integer words returned by Rng.state()');
    }
    if (state.spareNormal !== null && !Number.isFinite(state.spareNormal)) {
      throw new InvalidInputError('state.spareNormal', `must be a finite number or null, got ${state.spareNormal}`);
    }
    return new Rng(state.key | 0, xoroshiro128plusFromState(state.generator), state.spareNormal);
  }

  private static fromKey(key: number): Rng {
    const generator = xoroshiro128plus(fmix32(key));
    for (let i = 0; i < WARM_UP_DRAWS; i++) generator.next();
    return new Rng(key | 0, generator, null);
  }

  /** A uniform number in [0, 1), a multiple of 2^-53 (pure-rand `uniformFloat64`). */
  next(): number {
    return uniformFloat64(this.generator);
  }

  /**
   * A uniform integer in [minInclusive, maxInclusive] (pure-rand `uniformInt`, unbiased).
   * @throws InvalidInputError when a bound is not a safe integer or `minInclusive > maxInclusive`.
   */
  int(minInclusive: number, maxInclusive: number): number {
    if (!Number.isSafeInteger(minInclusive)) {
      throw new InvalidInputError('minInclusive', `must be a safe integer, got ${minInclusive}`);
    }
    if (!Number.isSafeInteger(maxInclusive)) {
      throw new InvalidInputError('maxInclusive', `must be a safe integer, got ${maxInclusive}`);
    }
    if (minInclusive > maxInclusive) {
      throw new InvalidInputError('minInclusive', `must be <= maxInclusive (${maxInclusive}), got ${minInclusive}`);
    }
    return uniformInt(this.generator, minInclusive, maxInclusive);
  }

  /**
   * A normal (Gaussian) draw by the Box–Muller transform: each pair of uniforms gives two
   * independent standard normals; the second is kept (and saved in {@link Rng.state}) for the next call.
   * @throws InvalidInputError when `stdDev` is negative or either argument is not finite.
   */
  normal(mean = 0, stdDev = 1): number {
    if (!Number.isFinite(mean)) throw new InvalidInputError('mean', `must be finite, got ${mean}`);
    if (!Number.isFinite(stdDev) || stdDev < 0) {
      throw new InvalidInputError('stdDev', `must be a finite number >= 0, got ${stdDev}`);
    }
    return mean + stdDev * this.standardNormal();
  }

  /**
   * A uniformly chosen element.
   * @throws InvalidInputError when `array` is empty.
   */
  pick<T>(array: readonly T[]): T {
    if (array.length === 0) throw new InvalidInputError('array', 'cannot pick from an empty array');
    return array[this.int(0, array.length - 1)] as T;
  }

  /**
   * An independent child stream named `label`. Its seed is a hash of this stream's key and the
   * label only, so it does not depend on, nor consume, this stream's draws: forking the same label
   * always gives the same child, and adding a fork does not shift anyone's numbers.
   */
  fork(label: string): Rng {
    return Rng.fromKey(fmix32(this.key ^ fnv1a32(label)));
  }

  /** The state to resume from with {@link Rng.fromState}; later draws do not change it. */
  state(): RngState {
    return { algorithm: ALGORITHM, key: this.key, generator: [...this.generator.getState()], spareNormal: this.spareNormal };
  }

  private standardNormal(): number {
    if (this.spareNormal !== null) {
      const spare = this.spareNormal;
      this.spareNormal = null;
      return spare;
    }
    // 1 - u is in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
    const angle = 2 * Math.PI * this.next();
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }
}

/** The murmur3 32-bit finaliser: a bijection on 32-bit integers with full avalanche. */
function fmix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** FNV-1a over the UTF-16 code units of `text`. */
function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}
