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

export const doctor: Command = {
  name: 'doctor',
  summary: 'print the WebGPU adapter, its limits and features, and whether f16 is usable',
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
      console.log('limits:');
      for (const name of LIMITS) console.log(`  ${name.padEnd(36)} ${rt.limits[name]}`);
      return 0;
    } finally {
      rt.destroy();
    }
  },
};
