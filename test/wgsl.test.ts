import { describe, expect, it } from 'vitest';
import { buildShader, prelude, preprocess, WgslPreprocessError } from '../src/runtime/wgsl.js';

const sources = {
  'main.wgsl': ['#include "common/a.wgsl"', 'x', '#if F', 'f', '#if !G', 'f-not-g', '#else', 'f-g', '#endif', '#else', 'not-f', '#endif', '#include "common/a.wgsl"'].join('\n'),
  'common/a.wgsl': '#include "common/b.wgsl"\na',
  'common/b.wgsl': 'b',
  'bad_else.wgsl': '#else',
  'bad_endif.wgsl': '#endif',
  'unterminated.wgsl': '#if F\nx',
  'unknown.wgsl': '#define X 1',
  'missing_include.wgsl': '#include "nope.wgsl"',
};

describe('WGSL preprocessor', () => {
  it('includes each file once, recursively', () => {
    expect(preprocess('main.wgsl', sources, new Set())).toBe('b\na\nx\nnot-f');
  });

  it('evaluates nested #if / #if ! / #else', () => {
    expect(preprocess('main.wgsl', sources, new Set(['F']))).toBe('b\na\nx\nf\nf-not-g');
    expect(preprocess('main.wgsl', sources, new Set(['F', 'G']))).toBe('b\na\nx\nf\nf-g');
  });

  it('generates the prelude: enables, aliases, consts', () => {
    expect(prelude({ dtypes: { T: 'f16', A: 'f32' }, consts: { TILE: 4, EPS: 1e-6 }, flags: ['SUBGROUPS'] })).toBe(
      'enable f16;\nenable subgroups;\nalias T = f16;\nalias A = f32;\nconst TILE: u32 = 4u;\nconst EPS: f32 = 0.000001;',
    );
    expect(buildShader('common/b.wgsl', sources, { dtypes: { T: 'f32' } })).toBe('alias T = f32;\nb');
  });

  it.each([
    ['bad_else.wgsl', 'bad_else.wgsl:1: #else without #if'],
    ['bad_endif.wgsl', 'bad_endif.wgsl:1: #endif without #if'],
    ['unterminated.wgsl', 'unterminated.wgsl: 1 unterminated #if'],
    ['unknown.wgsl', "unknown.wgsl:1: unknown directive '#define X 1'"],
    ['missing_include.wgsl', "missing_include.wgsl:1: included file 'nope.wgsl' not found"],
    ['absent.wgsl', "shader 'absent.wgsl' not found"],
  ])('rejects %s', (name, message) => {
    expect(() => preprocess(name, sources, new Set())).toThrow(new WgslPreprocessError(message));
  });
});
