/**
 * PNG bytes ↔ RGB images as float tensors in [0, 1] (NCHW, PyTorch layout), through pngjs.
 * Pixel values follow torchvision / diffusers: reading divides by 255 in f32 (`ToTensor`), writing
 * clamps to [0, 1] and rounds `x · 255` half to even (`numpy_to_pil`).
 */
import { PNG } from 'pngjs';
import type { HostTensor } from '../pipeline/host_tensor.js';

/**
 * Decodes a PNG of any colour type and bit depth (pngjs expands palettes and grey, and scales 16-bit
 * samples to 8) into a [1, 3, H, W] tensor. Alpha is dropped: the models see RGB only.
 */
export function decodePng(bytes: Uint8Array, name = 'PNG'): HostTensor {
  let png: { width: number; height: number; data: Uint8Array };
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new Error(`${name}: not a readable PNG (${(err as Error).message})`);
  }
  const { width, height, data } = png;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[c * plane + p] = Math.fround(data[4 * p + c] / 255);
  }
  return { shape: [1, 3, height, width], data: out };
}

/** `Math.round` rounds halves up; numpy rounds them to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Encodes image `index` of an [N, 3, H, W] tensor as an 8-bit RGB PNG. */
export function encodePng(image: HostTensor, index = 0): Uint8Array {
  const [n, channels, height, width] = image.shape;
  if (image.shape.length !== 4 || channels !== 3) {
    throw new Error(`encodePng: expected an [N, 3, H, W] image, got [${image.shape.join(', ')}]`);
  }
  if (!(index >= 0 && index < n)) throw new Error(`encodePng: image ${index} of a batch of ${n}`);
  const plane = width * height;
  const rgb = Buffer.alloc(3 * plane);
  const base = index * 3 * plane;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(1, Math.max(0, image.data[base + c * plane + p]));
      rgb[3 * p + c] = roundHalfEven(Math.fround(v * 255));
    }
  }
  const png = new PNG({ width, height });
  png.data = rgb;
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}
