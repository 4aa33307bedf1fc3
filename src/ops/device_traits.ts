/**
 * What kernel selection needs to know about a device beyond its limits: whether a CPU emulates it
 * (Mesa's lavapipe/llvmpipe, SwiftShader), where loads cost far more than arithmetic and other
 * kernels win, and the subgroup size when it is fixed.
 */
import type { Runtime } from '../runtime/device.js';

export interface DeviceTraits {
  /** A CPU runs the shaders: SIMD lanes for invocations, no real memory hierarchy to exploit. */
  cpuEmulated: boolean;
  /** The subgroup size when the device has subgroups and all of them have that one size; else null. */
  fixedSubgroupSize: number | null;
}

type AdapterDescription = Runtime['adapterInfo'];

const CPU_EMULATED = /llvmpipe|lavapipe|swiftshader/i;

/** Mesa's llvmpipe reports vendor 'mesa' and architecture 'software'; SwiftShader names itself. */
export function isCpuEmulated(info: AdapterDescription): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return CPU_EMULATED.test(text) || (info.vendor === 'mesa' && info.architecture === 'software');
}

const cache = new WeakMap<Runtime, DeviceTraits>();

export function deviceTraits(rt: Runtime): DeviceTraits {
  let traits = cache.get(rt);
  if (!traits) {
    const { subgroupMinSize, subgroupMaxSize } = rt.gpu.adapter.info ?? {};
    const fixed = rt.hasSubgroups && subgroupMinSize !== undefined && subgroupMinSize === subgroupMaxSize;
    traits = { cpuEmulated: isCpuEmulated(rt.adapterInfo), fixedSubgroupSize: fixed ? subgroupMinSize : null };
    cache.set(rt, traits);
  }
  return traits;
}

/**
 * Rows per subgroup of the register-tiled kernels (shaders/common/register_tile.wgsl, its 32 named
 * accumulators). On lavapipe 32 beat 16 by 5–18%; 64 rows, or 8 columns per lane, spill registers
 * and lost 20–30%.
 */
export const REGISTER_TILE_ROWS = 32;

/** The register-tiled kernels need subgroups of one fixed size that divides their rows. */
export function registerTilesFit(device: DeviceTraits): boolean {
  const sg = device.fixedSubgroupSize;
  return sg !== null && REGISTER_TILE_ROWS % sg === 0;
}
