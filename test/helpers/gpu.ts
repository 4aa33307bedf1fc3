import { afterAll } from 'vitest';
import { Runtime } from '../../src/runtime/device.js';

let shared: Promise<Runtime> | null = null;

/**
 * One runtime per test file. A missing adapter fails the suite (CI must have the software GPU);
 * it never skips.
 */
export function getRuntime(): Promise<Runtime> {
  shared ??= Runtime.create();
  return shared;
}

// Dawn aborts the process if it is torn down while the device still has work in flight.
afterAll(async () => {
  if (!shared) return;
  const rt = await shared;
  await rt.sync();
  rt.destroy();
  shared = null;
});
