/**
 * Runs fuzz cases against one target and classifies each outcome: a result, a typed error (one the
 * target documents, with a clear message), a crash (any other exception, an unclear message or a
 * result that fails the target's check) or a hang (a case that ran past the time bound). Cases run
 * one at a time, so a case's time is its own.
 */
import { Random } from './random.js';

export interface FuzzTarget<Case> {
  name: string;
  /** The case for one draw of the seeded random source. */
  generate(random: Random): Case;
  /** One case: returning is a result, throwing is an error. */
  run(input: Case): unknown;
  /** Whether a thrown value is one of the target's typed errors. */
  isTypedError(err: unknown): boolean;
  /** Why a result is wrong, or undefined when it is fine. */
  checkResult?(result: unknown, input: Case): string | undefined;
  /** Shows a failing case in the report (shortened). */
  describe(input: Case): string;
  /** Milliseconds one case may take before it counts as a hang. */
  timeBoundMs: number;
}

export interface FuzzCounts {
  target: string;
  seed: number;
  cases: number;
  results: number;
  errors: number;
  crashes: number;
  hangs: number;
  slowestMs: number;
  /** The first few crashes and hangs, for the report. */
  failures: string[];
}

/** Typed errors must say what is wrong in a line or two, however hostile the input. */
const MAX_MESSAGE_LENGTH = 2000;

function messageOf(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export async function runFuzz<Case>(target: FuzzTarget<Case>, cases: number, seed: number): Promise<FuzzCounts> {
  const random = new Random(seed);
  const counts: FuzzCounts = { target: target.name, seed, cases: 0, results: 0, errors: 0, crashes: 0, hangs: 0, slowestMs: 0, failures: [] };
  const fail = (kind: 'crash' | 'hang', input: Case, why: string) => {
    counts[kind === 'crash' ? 'crashes' : 'hangs']++;
    if (counts.failures.length < 5) counts.failures.push(`${kind}: ${why.slice(0, 300)} on ${target.describe(input).slice(0, 300)}`);
  };
  for (let i = 0; i < cases; i++) {
    const input = target.generate(random);
    const start = performance.now();
    let outcome: { result: unknown } | { error: unknown };
    try {
      outcome = { result: await target.run(input) };
    } catch (error) {
      outcome = { error };
    }
    const ms = performance.now() - start;
    counts.cases++;
    counts.slowestMs = Math.max(counts.slowestMs, ms);
    if (ms > target.timeBoundMs) fail('hang', input, `took ${ms.toFixed(0)} ms (bound ${target.timeBoundMs} ms)`);
    if ('error' in outcome) {
      const message = messageOf(outcome.error);
      if (!target.isTypedError(outcome.error)) fail('crash', input, `untyped ${message}`);
      else if (message.length > MAX_MESSAGE_LENGTH || (outcome.error as Error).message === '') fail('crash', input, `unclear message (${message.length} chars): ${message}`);
      else counts.errors++;
    } else {
      const wrong = target.checkResult?.(outcome.result, input);
      if (wrong !== undefined) fail('crash', input, `bad result: ${wrong}`);
      else counts.results++;
    }
  }
  return counts;
}

export function formatCounts(c: FuzzCounts): string {
  const head =
    `${c.target} (seed ${c.seed}): ${c.cases} cases run, ${c.results} results, ${c.errors} errors raised, ` +
    `${c.crashes} crashes, ${c.hangs} hangs; slowest case ${c.slowestMs.toFixed(1)} ms`;
  return [head, ...c.failures.map((f) => `  ${f}`)].join('\n');
}
