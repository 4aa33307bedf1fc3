/**
 * Mutations of parsed JSON documents: a node replaced by a value meant to break whatever expects
 * something else (wrong types, absurd numbers, long strings, prototype keys), or deleted. Values JSON
 * cannot hold as such (deep nesting, ±Infinity via 1e400) are spliced into the text by `toText`.
 */
import type { Random } from './random.js';

export type Json = Record<string, unknown> | unknown[];

const DEEP = '\u0000deep';
const HUGE = '\u0000huge';
const NEG_HUGE = '\u0000-huge';

export function hostileValue(random: Random, depth = 0): unknown {
  return random.weighted<() => unknown>([
    [4, () => random.pick([-1, 0, -0, 1, 2, 1.5, -0.5, 3, 7, 64, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e308, -1e308, 1e-320])],
    [1, () => random.pick([HUGE, NEG_HUGE])],
    [0.2, () => DEEP],
    [2, () => random.pick(['', '1', '12', 'F32', 'gelu', 'quick_gelu', 'NaN', 'Infinity', '__proto__', 'constructor', 'toString', 'CTA', 'x'.repeat(random.int(1500)), '\u0000', '\ud800'])],
    [1, () => random.pick([null, true, false])],
    [2, () => (depth > 3 ? [] : Array.from({ length: random.int(5) }, () => hostileValue(random, depth + 1)))],
    [1, () => (depth > 3 ? {} : Object.fromEntries(Array.from({ length: random.int(3) }, (_, i) => [random.pick([`k${i}`, '__proto__', 'constructor']), hostileValue(random, depth + 1)])))],
    [1, () => Array.from({ length: random.int(6) }, () => random.pick([0, 1, 2, 7, 16, 2 ** 31, 2 ** 40, -3, 1.5]))],
  ])();
}

/** Replaces (or deletes, or adds) one randomly chosen node of `root`, in place. */
export function mutateNode(random: Random, root: Json, extraKeys: readonly string[] = []): void {
  let node: Json = root;
  for (let depth = 0; depth < 4; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0 || random.chance(0.1)) break;
    const key = random.pick(keys);
    const child = (node as Record<string, unknown>)[key];
    if (typeof child === 'object' && child !== null && random.chance(0.5)) {
      node = child as Json;
      continue;
    }
    if (random.chance(0.2) && !Array.isArray(node)) delete node[key];
    else (node as Record<string, unknown>)[key] = hostileValue(random);
    return;
  }
  if (Array.isArray(node)) node.push(hostileValue(random));
  else Object.defineProperty(node, random.pick(['__proto__', 'extra', '', ...extraKeys]), { value: hostileValue(random), enumerable: true, configurable: true, writable: true });
}

/** JSON text of `root`, with the markers of hostileValue turned into what JSON.stringify cannot write. */
export function toText(random: Random, root: unknown): string {
  return JSON.stringify(root)
    .replaceAll(JSON.stringify(HUGE), '1e400')
    .replaceAll(JSON.stringify(NEG_HUGE), '-1e400')
    .replaceAll(JSON.stringify(DEEP), () => {
      const depth = random.between(5000, 12000);
      return `${'['.repeat(depth)}${']'.repeat(depth)}`;
    });
}
