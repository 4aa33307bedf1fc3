/**
 * PNG bytes ↔ RGB images as float tensors in [0, 1] (NCHW, PyTorch layout), through pngjs.
 * Pixel values follow torchvision / diffusers: reading divides by 255 in f32 (`ToTensor`), writing
 * clamps to [0, 1] and rounds `x · 255` half to even (`numpy_to_pil`).
 */
import { PNG } from 'pngjs';
import type { HostTensor } from '../pipeline/host_tensor.js';
import { toByte } from '../pipeline/image.js';

export class PngError extends Error {
  override name = 'PngError';
}

/**
 * The most pixels decoded (4096 × 4096): the decoder allocates what the header declares before it
 * reads any pixel data, so a 60-byte file claiming 100000 × 100000 must be refused first.
 */
export const MAX_PNG_PIXELS = 4096 * 4096;

/** Deflate expands its input at most about 1032-fold (a 258-byte match in under 2 bits). */
const MAX_INFLATE_RATIO = 1032;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Samples per pixel of each PNG colour type. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

interface PngHeader {
  width: number;
  height: number;
  /** Bytes the pixel rows need at least (filter bytes and interlacing add more). */
  rowBytes: number;
  /** Compressed pixel data: the lengths of all IDAT chunks. */
  idatBytes: number;
}

/** The IHDR fields (which must come first) and the IDAT total; undefined if the bytes do not start a PNG. */
function readHeader(bytes: Uint8Array): PngHeader | undefined {
  if (bytes.byteLength < 24 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = (at: number) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  if (type(12) !== 'IHDR') return undefined;
  const [width, height] = [view.getUint32(16), view.getUint32(20)];
  const bitsPerPixel = (CHANNELS[bytes[25]] ?? 1) * (bytes[24] || 1);
  let idatBytes = 0;
  for (let at = 8; at + 8 <= bytes.byteLength; at += 12 + view.getUint32(at)) {
    if (type(at + 4) === 'IDAT') idatBytes += Math.min(view.getUint32(at), bytes.byteLength - at - 8);
  }
  return { width, height, rowBytes: height * Math.ceil((width * bitsPerPixel) / 8), idatBytes };
}

/**
 * Decodes a PNG of any colour type and bit depth (pngjs expands palettes and grey, and scales 16-bit
 * samples to 8) into a [1, 3, H, W] tensor. Alpha is dropped: the models see RGB only. Anything
 * unreadable, oversized or too short for its declared size is a PngError, found before decoding
 * where the header tells: a small file must not make the decoder work as for a large image.
 */
export function decodePng(bytes: Uint8Array, name = 'PNG'): HostTensor {
  const header = readHeader(bytes);
  if (header === undefined) throw new PngError(`${name}: not a PNG (no PNG signature followed by an IHDR chunk)`);
  const declared = `${header.width}×${header.height}`;
  if (header.width === 0 || header.height === 0 || header.width * header.height > MAX_PNG_PIXELS) {
    throw new PngError(`${name}: the image is ${declared}; at most ${MAX_PNG_PIXELS} pixels (4096×4096) are read`);
  }
  if (header.rowBytes > header.idatBytes * MAX_INFLATE_RATIO) {
    throw new PngError(`${name}: ${header.idatBytes} bytes of image data cannot hold the ${declared} pixels the header declares (truncated?)`);
  }
  let png: { width: number; height: number; data: Uint8Array };
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    throw new PngError(`${name}: not a readable PNG (${err instanceof Error ? err.message : String(err)})`);
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
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG `tEXt` chunk (Latin-1 keyword and text; other characters become '?'). */
function textChunk(keyword: string, text: string): Uint8Array {
  const latin1 = (s: string) => Uint8Array.from(s, (ch) => (ch.charCodeAt(0) < 256 ? ch.charCodeAt(0) : 0x3f));
  const body = new Uint8Array([...latin1('tEXt'), ...latin1(keyword.slice(0, 79)), 0, ...latin1(text)]);
  const chunk = new Uint8Array(8 + body.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, body.length - 4);
  chunk.set(body, 4);
  view.setUint32(4 + body.length, crc32(body));
  return chunk;
}

/** Inserts `tEXt` chunks right after IHDR (which is always 8 + 25 bytes into the file). */
function withText(png: Uint8Array, text: Readonly<Record<string, string>>): Uint8Array {
  const chunks = Object.entries(text).map(([k, v]) => textChunk(k, v));
  const at = 8 + 25;
  const out = new Uint8Array(png.length + chunks.reduce((n, c) => n + c.length, 0));
  out.set(png.subarray(0, at));
  let offset = at;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  out.set(png.subarray(at), offset);
  return out;
}

/** Encodes image `index` of an [N, 3, H, W] tensor as an 8-bit RGB PNG, with optional `tEXt` metadata. */
export function encodePng(image: HostTensor, index = 0, text: Readonly<Record<string, string>> = {}): Uint8Array {
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
      rgb[3 * p + c] = toByte(image.data[base + c * plane + p]);
    }
  }
  const png = new PNG({ width, height });
  png.data = rgb;
  return withText(PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }), text);
}
