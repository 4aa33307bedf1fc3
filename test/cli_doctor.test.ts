import { describe, expect, it, vi } from 'vitest';
import { kernelChoice } from '../src/cli/commands/doctor.js';
import { main } from '../src/cli/main.js';
import { deviceTraits } from '../src/ops/device_traits.js';
import { getRuntime } from './helpers/gpu.js';

describe('doctor', () => {
  it('prints the adapter, f16, subgroups, the kernel set the ops pick and the limits', async () => {
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => lines.push(line));
    try {
      expect(await main(['doctor'])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const rt = await getRuntime();
    expect(lines).toContain(`kernels:      ${kernelChoice(deviceTraits(rt))}`);
    expect(lines).toContain(`  ${'maxStorageBufferBindingSize'.padEnd(36)} ${rt.limits.maxStorageBufferBindingSize}`);
    expect(lines.some((line) => line.startsWith('adapter:'))).toBe(true);
  });

  it('names the kernel set for each kind of adapter', () => {
    expect(kernelChoice({ cpuEmulated: false, fixedSubgroupSize: 32 })).toBe('GPU: workgroup-tiled GEMMs and convolutions, flash attention');
    expect(kernelChoice({ cpuEmulated: true, fixedSubgroupSize: 8 })).toBe(
      'CPU-emulated GPU: register-tiled GEMMs and convolutions (subgroups of 8), attention as GEMMs, one invocation per row in norms',
    );
    expect(kernelChoice({ cpuEmulated: true, fixedSubgroupSize: null })).toBe(
      'CPU-emulated GPU: workgroup-tiled GEMMs and convolutions (no fixed subgroup size), attention as GEMMs, one invocation per row in norms',
    );
  });
});
