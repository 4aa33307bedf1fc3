/** Float images [B, C, H, W] in [0, 1] → 8-bit pixels, as diffusers' `numpy_to_pil` quantises them. */
import type { HostTensor } from './host_tensor.js';

/** numpy's `round` (half to even), which `(x * 255).round()` uses. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One 8-bit channel value of a float pixel: clamp to [0, 1], `round(x · 255)` in f32. */
export function toByte(v: number): number {
  return roundHalfEven(Math.fround(Math.min(1, Math.max(0, v)) * 255));
}

/** RGBA bytes of each image (alpha 255), e.g. for a canvas `ImageData`. */
export function toRGBA(images: HostTensor): { width: number; height: number; data: Uint8ClampedArray }[] {
  const [batch, channels, height, width] = images.shape;
  if (images.shape.length !== 4 || channels !== 3) {
    throw new Error(`toRGBA: expected [B, 3, H, W] images, got [${images.shape.join(', ')}]`);
  }
  const plane = height * width;
  return Array.from({ length: batch }, (_, b) => {
    const data = new Uint8ClampedArray(plane * 4);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) data[4 * i + c] = toByte(images.data[(b * 3 + c) * plane + i]);
      data[4 * i + 3] = 255;
    }
    return { width, height, data };
  });
}
