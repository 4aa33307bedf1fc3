import { describe, expect, it } from 'vitest';
import { parseBenchOptions, splitArgs } from '../bench/options.js';
import { markdownTable } from '../bench/report.js';

describe('bench command line', () => {
  it('separates suite names from flags and their values', () => {
    expect(splitArgs(['models', '--dtype', 'f32', 'ops', '--full', '--runs', '2'])).toEqual({
      names: ['models', 'ops'],
      flags: ['--dtype', 'f32', '--full', '--runs', '2'],
    });
  });

  it('defaults to quick f16 with one timed run, three with --full', () => {
    expect(parseBenchOptions([])).toEqual({ full: false, dtype: 'f16', runs: 1 });
    expect(parseBenchOptions(['--full'])).toEqual({ full: true, dtype: 'f16', runs: 3 });
  });

  it('rejects bad flags with a message that names them', () => {
    expect(() => parseBenchOptions(['--dtype', 'bf16'])).toThrow('--dtype must be f32 or f16, got bf16');
    expect(() => parseBenchOptions(['--runs', '0'])).toThrow('--runs must be a positive integer, got 0');
    expect(() => parseBenchOptions(['--fast'])).toThrow('unknown bench flag --fast (known: --full --quick --dtype f32|f16 --runs N)');
  });
});

describe('bench report', () => {
  it('prints only the columns some row fills', () => {
    const table = markdownTable([
      { suite: 'ops', name: 'a', shape: '2x3', dtype: 'f32', ms: 1.5, gflops: 10 },
      { suite: 'ops', name: 'b', shape: '4', dtype: 'f16', ms: 0.25, gbps: 2.5, note: 'n' },
    ]);
    expect(table).toBe(
      [
        '| suite | name | shape | dtype | ms | GFLOP/s | GB/s | note |',
        '| --- | --- | --- | --- | ---: | ---: | ---: | --- |',
        '| ops | a | 2x3 | f32 | 1.50 | 10.0 |  |  |',
        '| ops | b | 4 | f16 | 0.25 |  | 2.5 | n |',
      ].join('\n'),
    );
  });
});
