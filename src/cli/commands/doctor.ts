import { deviceTraits, registerTilesFit, type DeviceTraits } from '../../ops/device_traits.js';
import { Runtime } from '../../runtime/device.js';
import type { Command } from '../command.js';

const LIMITS: (keyof GPUSupportedLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
];

/** The kernel set the ops pick on this adapter (src/ops/device_traits.ts). */
export function kernelChoice(traits: DeviceTraits): string {
  if (!traits.cpuEmulated) return 'GPU: workgroup-tiled GEMMs and convolutions, flash attention';
  const tiles = registerTilesFit(traits)
    ? `register-tiled GEMMs and convolutions (subgroups of ${traits.fixedSubgroupSize})`
    : 'workgroup-tiled GEMMs and convolutions (no fixed subgroup size)';
  return `CPU-emulated GPU: ${tiles}, attention as GEMMs, one invocation per row in norms`;
}

export const doctor: Command = {
  name: 'doctor',
  summary: 'print the WebGPU adapter, its limits and features, whether f16 is usable and the kernel set picked',
  usage: 'doctor',
  async run() {
    const rt = await Runtime.create();
    try {
      const info = rt.adapterInfo;
      console.log(`adapter:      ${info.vendor || '?'} / ${info.architecture || '?'} / ${info.device || info.description || '?'}`);
      console.log(`backend:      ${info.backend}`);
      console.log(`features:     ${[...rt.features].sort().join(', ')}`);
      console.log(`f16:          ${rt.hasF16 ? 'yes (shader-f16: f16 storage, f32 accumulation)' : 'no (f16 weights are widened to f32)'}`);
      console.log(`subgroups:    ${rt.hasSubgroups ? 'yes' : 'no'}`);
      console.log(`kernels:      ${kernelChoice(deviceTraits(rt))}`);
      console.log('limits:');
      for (const name of LIMITS) console.log(`  ${name.padEnd(36)} ${rt.limits[name]}`);
      return 0;
    } finally {
      rt.destroy();
    }
  },
};
