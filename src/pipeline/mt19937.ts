/**
 * Mirrors ATen's `at::mt19937` (aten/src/ATen/core/MT19937RNGEngine.h): the standard 32-bit
 * Mersenne Twister with `init_genrand` seeding, which backs torch's CPU generator.
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

export class MT19937 {
  private readonly state = new Uint32Array(N);
  private next = N;

  constructor(seed: number) {
    const state = this.state;
    state[0] = seed >>> 0;
    for (let j = 1; j < N; j++) {
      const prev = state[j - 1];
      state[j] = Math.imul(1812433253, prev ^ (prev >>> 30)) + j;
    }
  }

  /** The next tempered 32-bit output, as an unsigned integer. */
  nextU32(): number {
    if (this.next >= N) this.twist();
    let y = this.state[this.next++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const state = this.state;
    for (let k = 0; k < N; k++) {
      const y = (state[k] & UPPER_MASK) | (state[(k + 1) % N] & LOWER_MASK);
      state[k] = state[(k + M) % N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.next = 0;
  }
}
