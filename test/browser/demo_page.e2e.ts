// The demo page (examples/web/, built by `npm run build:web`) in Debian's Chromium on SwiftShader's WebGPU:
// the tiny pipelines streamed from a loopback server with the golden e2e settings, the image checked
// against diffusers' run A. A screenshot lands in test/browser/output/ (ignored by git).
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStatic } from '../../scripts/serve.mjs';
import { decodePng } from '../../src/io/png.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import { expectClose } from '../helpers/compare.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GOLDEN = `${ROOT}test/fixtures/pipelines/`;
const OUTPUT = `${ROOT}test/browser/output/`;

/** Debian's chromium; WebGPU needs the unsafe flag on Linux, SwiftShader gives a CPU adapter; the rest keeps it offline. */
const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** ../shared/golden/README.md §2, pipelines/e2e.safetensors::*image. */
const IMAGE_TOL = { atol: 1e-3, rtol: 1e-3 };
const MIN_PSNR_DB = 35;

declare global {
  interface Window {
    wuerstchenDemo: { state: string; error: string; images: { shape: number[]; data: Float32Array } | null };
  }
}

function psnr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let squared = 0;
  for (let i = 0; i < expected.length; i++) squared += (actual[i] - expected[i]) ** 2;
  return squared === 0 ? Infinity : 10 * Math.log10((255 * 255) / (squared / expected.length));
}

describe('demo page in Chromium (WebGPU on SwiftShader)', () => {
  let server: Server;
  let baseUrl: string;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    ({ server, url: baseUrl } = await serveStatic(ROOT));
    profile = await mkdtemp(join(tmpdir(), 'wuerstchen-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 1000 },
    });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  afterAll(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await new Promise((done) => server?.close(done));
  });

  it('generates the golden run A images: float image within atol 1e-3 rtol 1e-3, canvas PSNR ≥ 35 dB against e2e_image_0.png', async () => {
    const golden = await openSafetensors(`${GOLDEN}e2e.safetensors`);
    const settings = JSON.parse(golden.metadata.settings) as Record<string, string | number>;
    const expected = { shape: golden.tensors.get('image')!.shape, data: await golden.readF32('image') };
    await golden.close();

    const query = new URLSearchParams({
      prior: '/test/fixtures/pipelines/wuerstchen-prior',
      decoder: '/test/fixtures/pipelines/wuerstchen',
      prompt: String(settings.prompt),
      negative: String(settings.negative_prompt),
      width: String(settings.width),
      height: String(settings.height),
      seed: String(settings.seed),
      prior_steps: String(settings.prior_steps),
      prior_guidance: String(settings.prior_guidance),
      decoder_steps: String(settings.decoder_steps),
      decoder_guidance: String(settings.decoder_guidance),
      images: String(settings.num_images_per_prompt),
      dtype: 'f32',
    });
    await page.goto(`${baseUrl}/examples/web/index.html?${query}`);
    await page.waitForFunction(() => ['ready', 'error'].includes(window.wuerstchenDemo?.state));
    expect(await page.evaluate(() => window.wuerstchenDemo.error)).toBe('');
    // SwiftShader has no shader-f16: the page says so, and f32 is what the golden run used anyway.
    expect(await page.textContent('#adapter')).toContain('no shader-f16');

    await page.click('#generate');
    await page.waitForFunction(() => ['done', 'error'].includes(window.wuerstchenDemo.state), null, { timeout: 540_000 });
    const result = await page.evaluate(() => {
      const { state, error, images } = window.wuerstchenDemo;
      return { state, error, shape: images?.shape, data: images ? Array.from(images.data) : [] };
    });
    expect(result.error).toBe('');
    expect(result.state).toBe('done');
    expect(result.shape).toEqual(expected.shape);
    expectClose(result.data, expected.data, IMAGE_TOL, 'image');

    const canvas = await page.evaluate(() => {
      const c = document.querySelector<HTMLCanvasElement>('#images canvas')!;
      return { width: c.width, height: c.height, rgba: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data) };
    });
    const png = decodePng(await readFile(`${GOLDEN}e2e_image_0.png`), 'e2e_image_0.png');
    const [, , height, width] = png.shape;
    expect([canvas.width, canvas.height]).toEqual([width, height]);
    const plane = width * height;
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        ours.push(canvas.rgba[4 * i + c]);
        theirs.push(Math.round(png.data[c * plane + i] * 255));
      }
    }
    expect(psnr(ours, theirs)).toBeGreaterThanOrEqual(MIN_PSNR_DB);

    expect(await page.textContent('#download-text')).toContain('all weights loaded');
    expect(await page.textContent('#step-text')).toMatch(/^decoder step 3 \/ 3 .* — done$/);
    expect(await page.$$eval('#images a[download]', (links) => links.map((a) => (a as HTMLAnchorElement).download))).toEqual([
      'wuerstchen_42_0.png',
      'wuerstchen_42_1.png',
    ]);
    expect(pageErrors).toEqual([]);

    await mkdir(OUTPUT, { recursive: true });
    await page.screenshot({ path: `${OUTPUT}demo_page.png`, fullPage: true });
  });
});
