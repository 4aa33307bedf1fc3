/**
 * The WGSL preprocessor. A shader file never hard-codes its element type or tile sizes: the runtime
 * prepends a generated prelude, and the file may use three directives:
 *
 *   #include "common/name.wgsl"   inline another file from shaders/ (each file at most once)
 *   #if FLAG / #if !FLAG          keep the following lines only when FLAG is (not) set
 *   #else / #endif                nested blocks are allowed
 *
 * Prelude, in this order: `enable f16;` when any alias is f16, `enable subgroups;` when the
 * SUBGROUPS flag is set, then `alias <Name> = f32|f16;` per dtype and `const <NAME>: u32 = <n>u;`
 * (or `: f32` for non-integers) per constant.
 */

export type ShaderDType = 'f32' | 'f16';

export interface ShaderVariant {
  flags?: readonly string[];
  consts?: Readonly<Record<string, number>>;
  dtypes?: Readonly<Record<string, ShaderDType>>;
}

export class WgslPreprocessError extends Error {
  override name = 'WgslPreprocessError';
}

export function prelude(variant: ShaderVariant): string {
  const lines: string[] = [];
  const dtypes = Object.entries(variant.dtypes ?? {});
  if (dtypes.some(([, t]) => t === 'f16')) lines.push('enable f16;');
  if (variant.flags?.includes('SUBGROUPS')) lines.push('enable subgroups;');
  for (const [name, t] of dtypes) lines.push(`alias ${name} = ${t};`);
  for (const [name, value] of Object.entries(variant.consts ?? {})) {
    lines.push(Number.isInteger(value) && value >= 0 ? `const ${name}: u32 = ${value}u;` : `const ${name}: f32 = ${value};`);
  }
  return lines.join('\n');
}

const INCLUDE = /^\s*#include\s+"([^"]+)"\s*$/;
const IF = /^\s*#if\s+(!?)([A-Za-z_][A-Za-z0-9_]*)\s*$/;
const ELSE = /^\s*#else\s*$/;
const ENDIF = /^\s*#endif\s*$/;

/** Expands includes and conditionals of `name` (a key of `sources`) for the given flags. */
export function preprocess(
  name: string,
  sources: Readonly<Record<string, string>>,
  flags: ReadonlySet<string>,
  included: Set<string> = new Set(),
): string {
  const source = sources[name];
  if (source === undefined) throw new WgslPreprocessError(`shader '${name}' not found`);
  included.add(name);
  const out: string[] = [];
  // Each open #if holds whether its current branch is active and whether its parent was.
  const stack: { active: boolean; parentActive: boolean; sawElse: boolean }[] = [];
  const active = () => (stack.length === 0 ? true : stack[stack.length - 1].active);
  source.split('\n').forEach((line, i) => {
    const where = `${name}:${i + 1}`;
    let m: RegExpMatchArray | null;
    if ((m = line.match(IF))) {
      const parentActive = active();
      const set = flags.has(m[2]);
      stack.push({ active: parentActive && (m[1] === '!' ? !set : set), parentActive, sawElse: false });
    } else if (ELSE.test(line)) {
      const top = stack[stack.length - 1];
      if (!top || top.sawElse) throw new WgslPreprocessError(`${where}: #else without #if`);
      top.sawElse = true;
      top.active = top.parentActive && !top.active;
    } else if (ENDIF.test(line)) {
      if (!stack.pop()) throw new WgslPreprocessError(`${where}: #endif without #if`);
    } else if ((m = line.match(INCLUDE))) {
      if (active() && !included.has(m[1])) {
        if (sources[m[1]] === undefined) throw new WgslPreprocessError(`${where}: included file '${m[1]}' not found`);
        out.push(preprocess(m[1], sources, flags, included));
      }
    } else if (/^\s*#/.test(line)) {
      throw new WgslPreprocessError(`${where}: unknown directive '${line.trim()}'`);
    } else if (active()) {
      out.push(line);
    }
  });
  if (stack.length) throw new WgslPreprocessError(`${name}: ${stack.length} unterminated #if`);
  return out.join('\n');
}

/** Full source of a shader variant: prelude + preprocessed file. */
export function buildShader(name: string, sources: Readonly<Record<string, string>>, variant: ShaderVariant): string {
  return `${prelude(variant)}\n${preprocess(name, sources, new Set(variant.flags ?? []))}`;
}

/** Cache key of a variant: file + flags + consts + dtypes, never shape values. */
export function variantKey(name: string, variant: ShaderVariant): string {
  const flags = [...(variant.flags ?? [])].sort().join(',');
  const consts = Object.entries(variant.consts ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',');
  const dtypes = Object.entries(variant.dtypes ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',');
  return `${name}|${flags}|${consts}|${dtypes}`;
}
