/**
 * The implicit-GEMM convolution engine (shaders/conv2d.wgsl) shared by conv2d and conv_transpose2d:
 * each output position of a grid is one GEMM row, gathered from NHWC input through a geometry of
 * kernel taps, against tap-major weights [kH, kW, Cout, Cin/groups]. The geometry fields mirror the
 * shader's Params; its header says what each one means.
 */
import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import { deviceTraits, REGISTER_TILE_ROWS, registerTilesFit, type DeviceTraits } from './device_traits.js';

/**
 * 'tall': 16×16 threads × 8×4 outputs (128×64 tiles, K step 16), for deep reductions: on an H100 it
 * ran the VQGAN's ConvTranspose2d k4 s2 (K 1536) 33% faster than 'large', Stage B's k2 s2
 * down-sampler (K 1280) 3% slower and its k2 s2 up-sampler (K 640) 15% slower.
 * 'large': 16×16 threads × 4×4 outputs (64×64 tiles, K step 16). 'small': 8×8 threads × 4×4 outputs
 * (32×32 tiles, K step 32), for convolutions whose outputs make too few large tiles to fill the GPU
 * (Stage B's deepest down/up-samplers: 256 positions × 1280 channels). Both stage operands in
 * workgroup memory (shaders/conv2d.wgsl). 'register': one subgroup per 32 rows × 4·SG columns held
 * in registers (shaders/conv2d_register.wgsl), the default on CPU-emulated GPUs, where it runs the
 * VQGAN's ConvTranspose2d k4 s2 and Stage B's k2 s2 samplers 4.5–6× faster than 'large' (lavapipe,
 * 21–25 against 3.5–4.8 GFLOP/s); on an H100 'large' wins by 1.3–1.9×.
 */
export type ConvTile = 'tall' | 'large' | 'small' | 'register';

/** WG_M × WG_N threads, each computing RM × 4 outputs; K step BK. */
const TILES: Record<Exclude<ConvTile, 'register'>, { WG_M: number; WG_N: number; RM: number; BK: number }> = {
  tall: { WG_M: 16, WG_N: 16, RM: 8, BK: 16 },
  large: { WG_M: 16, WG_N: 16, RM: 4, BK: 16 },
  small: { WG_M: 8, WG_N: 8, RM: 4, BK: 32 },
};

/** Below this many 64×64 tiles the large variant leaves GPU cores idle. */
const LARGE_TILE_MIN_WORKGROUPS = 256;

/** Reduction length from which a convolution with enough tiles takes the tall tile. */
const TALL_TILE_MIN_K = 1536;

type Pair = readonly [number, number];

export interface ConvGemmGeometry {
  label: string;
  x: Tensor;
  weight: Tensor;
  bias: Tensor | undefined;
  out: Tensor;
  groups: number;
  cinPerGroup: number;
  coutPerGroup: number;
  /** Output positions this dispatch computes, per image, as [rows, columns]. */
  grid: Pair;
  /** Taps per output position, as [rows, columns]. */
  taps: Pair;
  inStep: Pair;
  inOffset: Pair;
  /** +1: tap t reads input row origin + t (convolution); -1: origin - t (transposed convolution). */
  tapDir: 1 | -1;
  /** Kernel tap (ky·kW + kx) read by tap (0, 0), and its step per tap row and per tap column. */
  weightTap0: number;
  weightTapStep: Pair;
  outStep: Pair;
  outOffset: Pair;
  replicate: boolean;
  /** One vec4 per load and store; needs Cin/groups and Cout/groups divisible by 4. */
  vec4: boolean;
  /** Forces a tile size; by default chosen from the number of output tiles. */
  tile: ConvTile | undefined;
}

export function vec4Applies(cinPerGroup: number, coutPerGroup: number): boolean {
  return cinPerGroup % 4 === 0 && coutPerGroup % 4 === 0;
}

/** Throws when the vec4 kernel is forced where channels do not allow it. */
export function checkVec4(label: string, cinPerGroup: number, coutPerGroup: number): void {
  if (!vec4Applies(cinPerGroup, coutPerGroup)) {
    throw new Error(
      `${label}: the vec4 kernel needs input and output channels per group divisible by 4, got ${cinPerGroup} and ${coutPerGroup}`,
    );
  }
}

/** The tile the device and shape rule picks for `rows` output positions × `cout` channels per group, reduction length `k`. */
export function chooseConvTile(device: DeviceTraits, rows: number, cout: number, k: number, groups: number): ConvTile {
  if (device.cpuEmulated && registerTilesFit(device)) return 'register';
  const largeTiles = Math.ceil(rows / 64) * Math.ceil(cout / 64) * groups;
  if (largeTiles < LARGE_TILE_MIN_WORKGROUPS) return 'small';
  return k >= TALL_TILE_MIN_K ? 'tall' : 'large';
}

export function dispatchConvGemm(rt: Runtime, g: ConvGemmGeometry): void {
  const [batch, inH, inW, inC] = g.x.shape;
  const [, outH, outW, outC] = g.out.shape;
  const rows = batch * g.grid[0] * g.grid[1];
  if (rows === 0) return;
  const k = g.taps[0] * g.taps[1] * g.cinPerGroup;
  const device = deviceTraits(rt);
  const tile = g.tile ?? chooseConvTile(device, rows, g.coutPerGroup, k, g.groups);
  if (tile === 'register' && !registerTilesFit(device)) {
    throw new Error(
      `${g.label}: the register tile needs subgroups of one size dividing ${REGISTER_TILE_ROWS}; this device has ` +
        (device.fixedSubgroupSize === null ? 'none of a fixed size' : `size ${device.fixedSubgroupSize}`),
    );
  }
  const sg = device.fixedSubgroupSize!;
  const [shader, consts, tileRows, tileCols] =
    tile === 'register'
      ? ['conv2d_register.wgsl', { SG: sg, ROWS: REGISTER_TILE_ROWS }, REGISTER_TILE_ROWS, 4 * sg]
      : ['conv2d.wgsl', TILES[tile], TILES[tile].RM * TILES[tile].WG_M, 4 * TILES[tile].WG_N];
  const tiles = Math.ceil(rows / tileRows) * Math.ceil(g.coutPerGroup / tileCols);
  const [wx, wy] = rt.grid(tiles, 1);
  const flags = [tile === 'register' && 'SUBGROUPS', g.vec4 && 'VEC4', g.bias && 'HAS_BIAS', g.replicate && 'REPLICATE'].filter(
    (f): f is string => !!f,
  );
  const params = new Params()
    .u32(inH, inW, inC, g.cinPerGroup, g.grid[0], g.grid[1], rows, k, g.taps[1], g.inStep[0], g.inStep[1])
    .i32(g.inOffset[0], g.inOffset[1], g.tapDir)
    .u32(g.weightTap0, g.weightTapStep[0], g.weightTapStep[1])
    .u32(outH, outW, outC, g.coutPerGroup, g.outStep[0], g.outStep[1], g.outOffset[0], g.outOffset[1]);
  rt.dispatch({
    kernel: { shader, flags, consts, dtypes: { T: g.x.dtype, W: g.weight.dtype } },
    label: g.label,
    params: params.data(),
    inputs: g.bias ? [g.x, g.weight, g.bias] : [g.x, g.weight],
    outputs: [g.out],
    workgroups: [wx, wy, g.groups],
  });
}
