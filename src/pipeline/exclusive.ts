/**
 * Generations on one runtime run one at a time. The runtime's scope stack and command recorder, and
 * a pipeline's scheduler, are shared state: two interleaved generations would record into each
 * other's scopes and free each other's tensors. A call made while another runs waits for it; a
 * failed call releases the queue like a finished one. (A step callback must not start another
 * generation on the same runtime and wait for it: that generation queues behind the running one.)
 */
import type { Runtime } from '../runtime/device.js';

const queues = new WeakMap<Runtime, Promise<unknown>>();

export function exclusive<T>(rt: Runtime, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(rt) ?? Promise.resolve()).then(fn);
  queues.set(rt, run.catch(() => undefined));
  return run;
}
