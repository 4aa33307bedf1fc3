/**
 * Matrix products on the GPU: `linear` (PyTorch `F.linear`, weights [N, K] read in place, with a
 * fused bias + activation + residual epilogue) and batched `matmul`. Two kernel families compute
 * them: workgroup-memory tiles (shaders/matmul.wgsl) on GPUs, register tiles shared through
 * subgroups (shaders/matmul_register.wgsl) on CPU-emulated GPUs. Kernel, tile and load width are
 * picked per device and shape, or forced with `variant` (tests, benchmarks).
 */
import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import type { Activation } from './activation.js';
import { deviceTraits, REGISTER_TILE_ROWS, registerTilesFit, type DeviceTraits } from './device_traits.js';

/** The activations the epilogue fuses: those of activation.ts that the shader's ACT constant has. */
export type FusedActivation = Extract<Activation, 'gelu' | 'silu' | 'leaky_relu' | 'quick_gelu'>;

/** Activation ids of the shader's ACT constant. */
const ACT_ID: Record<FusedActivation | 'none', number> = { none: 0, gelu: 1, silu: 2, leaky_relu: 3, quick_gelu: 4 };

/**
 * 'large': 16×16 threads × 8×4 outputs (128×64 tiles, K step 16), for GEMMs with many tiles.
 * 'small': 16×16 threads × 4×4 outputs (64×64 tiles, K step 32), so skinny shapes (2 × 77 CLIP
 * tokens, narrow outputs) spread over twice as many workgroups.
 * 'wide': 16×16 threads × 4×8 outputs (64×128 tiles, K step 16), for wide outputs (N ≥ 4096) with
 * many tiles: on an H100 it ran Stage C's fc1 (1152×1536×6144) 13% faster than large, and the
 * 6144-deep fc2 (N 1536) 6% slower.
 * Chosen from H100 sweeps (bench/ops_matmul.ts has the real shapes): large reached 19–29 TFLOP/s
 * f32 on Stage C and VQGAN MLPs, small won below ~1.5 waves of large tiles, 8×8 outputs per
 * thread lost to 8×4 everywhere. All stay within WebGPU's default 16 KiB of workgroup memory.
 */
export type MatmulTile = 'large' | 'small' | 'wide';

/** Threads WG_M × WG_N, each computing RM (4 or 8) rows × CN (4, the default, or 8) columns of outputs; K step TK. */
export interface TileConfig {
  WG_M: number;
  WG_N: number;
  RM: number;
  CN?: number;
  TK: number;
}

const TILES: Record<MatmulTile, TileConfig> = {
  large: { WG_M: 16, WG_N: 16, RM: 8, TK: 16 },
  small: { WG_M: 16, WG_N: 16, RM: 4, TK: 32 },
  wide: { WG_M: 16, WG_N: 16, RM: 4, CN: 8, TK: 16 },
};

/** Output width from which a GEMM with enough tiles takes the wide tile. */
const WIDE_TILE_MIN_N = 4096;

/** Below this many 128×64 tiles the large variant leaves GPU cores idle (H100: 132 SMs). */
const LARGE_TILE_MIN_WORKGROUPS = 192;

/**
 * 'tiled': shaders/matmul.wgsl, operand tiles staged in workgroup memory (GPUs).
 * 'register': shaders/matmul_register.wgsl, for GPUs a CPU emulates (lavapipe, SwiftShader): no
 * workgroup memory, a subgroup computes 32 rows × 4 columns per lane, A rows shared by
 * subgroupBroadcast. Needs subgroups of one fixed size dividing 32. On lavapipe (2 cores) it runs
 * the Stage C, VQGAN and CLIP GEMMs 4–8× faster than the tiled kernel (30–43 against 4.5–8.4
 * GFLOP/s); on SwiftShader about 2×.
 */
export type MatmulKernel = 'tiled' | 'register';

/** Forces a kernel variant; unset fields are chosen from the device and shape. */
export interface MatmulVariant {
  kernel?: MatmulKernel;
  /** Tiled kernel (implied when set): a named tile, or any configuration (for tuning on a new GPU). */
  tile?: MatmulTile | TileConfig;
  /** vec4 global loads; needs K % 4 == 0 (and N % 4 == 0 when B is [K, N]). */
  vec4?: boolean;
}

/** The variant the rule picks; `tile` only matters to the tiled kernel. */
export interface ChosenVariant {
  kernel: MatmulKernel;
  tile: MatmulTile;
  vec4: boolean;
}

export interface LinearOptions {
  /** Applied after the bias. */
  act?: FusedActivation;
  /** Added after the activation; same shape as the output. */
  residual?: Tensor;
  /** Written instead of a new tensor; must not overlap `x`, `weight`, `bias` or `residual`. */
  out?: Tensor;
  variant?: MatmulVariant;
}

export interface MatmulOptions {
  /** `b` is [B..., N, K] (e.g. keys for Q·Kᵀ) instead of [B..., K, N]. */
  transposeB?: boolean;
  /** Scales the product (e.g. 1/√d for attention scores). */
  alpha?: number;
  /** Multiplies only rows start .. start + count of every matrix of `a` (M = count). */
  aRows?: RowWindow;
  /**
   * Writes the product into rows rowStart .. rowStart + M of every matrix of `out` [B..., ≥ M, N]
   * instead of a new tensor; `out` must not overlap `a` or `b`.
   */
  into?: { out: Tensor; rowStart: number };
  variant?: MatmulVariant;
}

export interface RowWindow {
  start: number;
  count: number;
}

interface Gemm {
  label: string;
  a: Tensor;
  b: Tensor;
  bias?: Tensor;
  residual?: Tensor;
  out: Tensor;
  m: number;
  n: number;
  k: number;
  batch: number;
  /** b is stored [N, K] per batch entry. */
  bNK: boolean;
  /** Elements between batch entries of `a` and `out`, and before the first one. */
  aBatchStride: number;
  aOffset: number;
  /** Elements between batch entries of `b`; 0 shares one matrix. */
  bBatchStride: number;
  outBatchStride: number;
  outOffset: number;
  alpha: number;
  act: FusedActivation | 'none';
  variant?: MatmulVariant;
}

const shapeText = (t: Tensor) => `[${t.shape.join(', ')}]`;

/** `x @ weightᵀ + bias`, then `act`, then `+ residual`; x [..., K], weight [N, K] → [..., N]. */
export function linear(rt: Runtime, x: Tensor, weight: Tensor, bias?: Tensor, opts: LinearOptions = {}): Tensor {
  const k = x.shape[x.shape.length - 1];
  if (weight.shape.length !== 2 || weight.shape[1] !== k) {
    throw new Error(`linear: weight ${shapeText(weight)} does not match input ${shapeText(x)} (expected [N, ${k}])`);
  }
  const n = weight.shape[0];
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== n)) {
    throw new Error(`linear: bias ${shapeText(bias)} does not match weight ${shapeText(weight)} (expected [${n}])`);
  }
  if (bias && bias.dtype !== weight.dtype) {
    throw new Error(`linear: bias is ${bias.dtype} but weight is ${weight.dtype}; they must match`);
  }
  const outShape = [...x.shape.slice(0, -1), n];
  for (const [what, t] of [['residual', opts.residual], ['out', opts.out]] as const) {
    if (t && (t.shape.length !== outShape.length || t.shape.some((d, i) => d !== outShape[i]) || t.dtype !== x.dtype)) {
      throw new Error(`linear: ${what} ${shapeText(t)} ${t.dtype} must be [${outShape.join(', ')}] ${x.dtype}`);
    }
  }
  const out = opts.out ?? rt.empty(outShape, x.dtype, 'linear');
  gemm(rt, {
    label: 'linear',
    a: x,
    b: weight,
    bias,
    residual: opts.residual,
    out,
    m: x.shape.slice(0, -1).reduce((p, d) => p * d, 1),
    n,
    k,
    batch: 1,
    bNK: true,
    aBatchStride: 0,
    aOffset: 0,
    bBatchStride: 0,
    outBatchStride: 0,
    outOffset: 0,
    alpha: 1,
    act: opts.act ?? 'none',
    variant: opts.variant,
  });
  return out;
}

/**
 * Batched `a @ b` (or `a @ bᵀ` with transposeB): a [B..., M, K], b [B..., K, N] → [B..., M, N];
 * `aRows` and `into` read and write windows of rows (attention's query chunks).
 */
export function matmul(rt: Runtime, a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const rank = a.shape.length;
  if (rank < 2 || b.shape.length !== rank || a.shape.slice(0, -2).some((d, i) => d !== b.shape[i])) {
    throw new Error(`matmul: a ${shapeText(a)} and b ${shapeText(b)} need the same batch dims and rank >= 2`);
  }
  const [aM, k] = a.shape.slice(-2);
  const transposeB = opts.transposeB ?? false;
  const [bk, n] = transposeB ? [b.shape[rank - 1], b.shape[rank - 2]] : b.shape.slice(-2);
  if (bk !== k) {
    throw new Error(`matmul: inner dims differ: a ${shapeText(a)}, b ${shapeText(b)}${transposeB ? ' (transposeB)' : ''}`);
  }
  const { start, count: m } = opts.aRows ?? { start: 0, count: aM };
  checkWindow('aRows', start, m, aM, k);
  const batchShape = a.shape.slice(0, -2);
  const outShape = [...batchShape, m, n];
  let out: Tensor;
  let outRows = m;
  let outStart = 0;
  if (opts.into) {
    out = opts.into.out;
    outStart = opts.into.rowStart;
    outRows = out.shape[rank - 2];
    const fits = out.shape.length === rank && batchShape.every((d, i) => d === out.shape[i]) && out.shape[rank - 1] === n;
    if (!fits || out.dtype !== a.dtype) {
      throw new Error(`matmul: into.out ${shapeText(out)} ${out.dtype} cannot hold rows of [${outShape.join(', ')}] ${a.dtype}`);
    }
    checkWindow('into', outStart, m, outRows, n);
  } else {
    out = rt.empty(outShape, a.dtype, 'matmul');
  }
  gemm(rt, {
    label: 'matmul',
    a,
    b,
    out,
    m,
    n,
    k,
    batch: batchShape.reduce((p, d) => p * d, 1),
    bNK: transposeB,
    aBatchStride: aM * k,
    aOffset: start * k,
    bBatchStride: k * n,
    outBatchStride: outRows * n,
    outOffset: outStart * n,
    alpha: opts.alpha ?? 1,
    act: 'none',
    variant: opts.variant,
  });
  return out;
}

/** Row windows start on a vec4 boundary so both kernels' vec4 loads and stores stay aligned. */
function checkWindow(what: string, start: number, count: number, rows: number, rowLength: number): void {
  const aligned = (start * rowLength) % 4 === 0;
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > rows || !aligned) {
    throw new Error(
      `matmul: ${what} rows ${start} .. ${start + count} do not fit ${rows} rows of ${rowLength} ` +
        `(or do not start on a multiple of 4 elements)`,
    );
  }
}

/** The variant the device and shape rule picks (exported so tests and benchmarks can name what ran). */
export function chooseVariant(device: DeviceTraits, m: number, n: number, k: number, batch: number, bNK: boolean): ChosenVariant {
  const largeGroups = Math.ceil(m / 128) * Math.ceil(n / 64) * batch;
  return {
    kernel: device.cpuEmulated && registerTilesFit(device) ? 'register' : 'tiled',
    tile: largeGroups < LARGE_TILE_MIN_WORKGROUPS ? 'small' : n >= WIDE_TILE_MIN_N ? 'wide' : 'large',
    vec4: k % 4 === 0 && (bNK || n % 4 === 0),
  };
}

function checkTile(rt: Runtime, label: string, cfg: TileConfig): TileConfig {
  const cn = cfg.CN ?? 4;
  const bytes = 4 * cfg.TK * (cfg.RM * cfg.WG_M + cn * cfg.WG_N);
  if ((cfg.RM !== 4 && cfg.RM !== 8) || (cn !== 4 && cn !== 8) || cfg.TK % 4) {
    throw new Error(`${label}: tile ${JSON.stringify(cfg)}: RM and CN must be 4 or 8 and TK a multiple of 4`);
  }
  if (bytes > rt.limits.maxComputeWorkgroupStorageSize || cfg.WG_M * cfg.WG_N > rt.limits.maxComputeInvocationsPerWorkgroup) {
    throw new Error(`${label}: tile ${JSON.stringify(cfg)} needs ${bytes} bytes of workgroup memory and ${cfg.WG_M * cfg.WG_N} threads, more than this device allows`);
  }
  return cfg;
}

function overlaps(x: Tensor, y: Tensor): boolean {
  return x.buffer === y.buffer && x.byteOffset < y.byteOffset + y.byteSize && y.byteOffset < x.byteOffset + x.byteSize;
}

function gemm(rt: Runtime, g: Gemm): void {
  const inputs = [g.a, g.b, ...(g.bias ? [g.bias] : []), ...(g.residual ? [g.residual] : [])];
  if (inputs.some((t) => overlaps(t, g.out))) {
    throw new Error(`${g.label}: out overlaps an input; WebGPU forbids a written binding aliasing another`);
  }
  const device = deviceTraits(rt);
  const chosen = chooseVariant(device, g.m, g.n, g.k, g.batch, g.bNK);
  // A forced tile implies the tiled kernel.
  const kernel = g.variant?.kernel ?? (g.variant?.tile ? 'tiled' : chosen.kernel);
  const vec4 = g.variant?.vec4 ?? chosen.vec4;
  if (vec4 && !chosen.vec4) {
    throw new Error(`${g.label}: vec4 loads need K % 4 == 0${g.bNK ? '' : ' and N % 4 == 0'} (M ${g.m}, N ${g.n}, K ${g.k})`);
  }
  if (kernel === 'register' && !registerTilesFit(device)) {
    throw new Error(
      `${g.label}: the register kernel needs subgroups of one size dividing ${REGISTER_TILE_ROWS}; this device has ` +
        (device.fixedSubgroupSize === null ? 'none of a fixed size' : `size ${device.fixedSubgroupSize}`),
    );
  }
  const launch = kernel === 'register' ? registerLaunch(g, device.fixedSubgroupSize!) : tiledLaunch(rt, g, g.variant?.tile ?? chosen.tile);
  const maxGroups = rt.limits.maxComputeWorkgroupsPerDimension;
  if (launch.groups.some((c) => c > maxGroups)) {
    throw new Error(`${g.label}: grid [${launch.groups.join(', ')}] exceeds ${maxGroups} workgroups per dimension`);
  }
  if (g.out.size === 0) return;
  const flags = [
    ...launch.flags,
    ...(vec4 ? ['VEC4'] : []),
    ...(g.bNK ? ['B_NK'] : []),
    ...(g.bias ? ['BIAS'] : []),
    ...(g.residual ? ['RESIDUAL'] : []),
  ];
  rt.dispatch({
    kernel: {
      shader: launch.shader,
      flags,
      consts: { ...launch.consts, ACT: ACT_ID[g.act] },
      dtypes: { T: g.a.dtype, W: g.b.dtype },
    },
    label: g.label,
    params: new Params()
      .u32(g.m, g.n, g.k, g.aBatchStride, g.bBatchStride, g.outBatchStride)
      .f32(g.alpha)
      .u32(g.aOffset, g.outOffset)
      .data(),
    inputs,
    outputs: [g.out],
    workgroups: launch.groups,
    work: 2 * g.m * g.n * g.k * g.batch,
  });
}

interface Launch {
  shader: string;
  flags: string[];
  consts: Record<string, number>;
  groups: readonly [number, number, number];
}

function tiledLaunch(rt: Runtime, g: Gemm, tile: MatmulTile | TileConfig): Launch {
  const cfg = typeof tile === 'string' ? TILES[tile] : checkTile(rt, g.label, tile);
  const cn = cfg.CN ?? 4;
  return {
    shader: 'matmul.wgsl',
    flags: [...(cfg.RM === 8 ? ['ROWS8'] : []), ...(cn === 8 ? ['COLS8'] : [])],
    consts: { ...cfg, CN: cn },
    groups: [Math.ceil(g.n / (cn * cfg.WG_N)), Math.ceil(g.m / (cfg.RM * cfg.WG_M)), g.batch],
  };
}

function registerLaunch(g: Gemm, subgroupSize: number): Launch {
  return {
    shader: 'matmul_register.wgsl',
    // Each lane stores 4 adjacent columns: one vec4 store where N allows.
    flags: ['SUBGROUPS', ...(g.n % 4 === 0 ? ['OUT_VEC4'] : [])],
    consts: { SG: subgroupSize, ROWS: REGISTER_TILE_ROWS },
    groups: [Math.ceil(g.n / (4 * subgroupSize)), Math.ceil(g.m / REGISTER_TILE_ROWS), g.batch],
  };
}
