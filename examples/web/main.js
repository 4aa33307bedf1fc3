// @ts-check
// The demo page: both Würstchen pipelines loaded from base URLs (tensor by tensor, with download
// progress), a generation with per-step progress and latents previews, the images on canvases.
// Every form field can be preset from the page's query string (?prompt=…&seed=42&prior=…).
import { Runtime, toRGBA, TorchGenerator, WuerstchenDecoderPipeline, WuerstchenPriorPipeline } from './dist/wuerstchen.js';

/** @typedef {import('./dist/wuerstchen.js').LoadProgress} LoadProgress */
/** @typedef {import('./dist/wuerstchen.js').StepInfo} StepInfo */
/** @typedef {import('./dist/wuerstchen.js').HostTensor} HostTensor */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const form = /** @type {HTMLFormElement} */ ($('settings'));
const generateButton = /** @type {HTMLButtonElement} */ ($('generate'));
const cancelButton = /** @type {HTMLButtonElement} */ ($('cancel'));
const downloadBar = /** @type {HTMLProgressElement} */ ($('download-bar'));
const stepBar = /** @type {HTMLProgressElement} */ ($('step-bar'));
const preview = /** @type {HTMLCanvasElement} */ ($('preview'));

/** What a test or a console user can inspect: the state and the last images ([B, 3, H, W] in [0, 1]). */
const demo = { state: 'starting', /** @type {HostTensor | null} */ images: null, error: '' };
Object.assign(window, { wuerstchenDemo: demo });

function setState(/** @type {string} */ state) {
  demo.state = state;
  document.body.dataset.state = state;
}

function showError(/** @type {unknown} */ err) {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  demo.error = message;
  $('error').textContent = message;
  console.error(err);
  setState('error');
}

for (const [name, value] of new URLSearchParams(location.search)) {
  const field = form.elements.namedItem(name);
  if (field instanceof HTMLInputElement || field instanceof HTMLTextAreaElement || field instanceof HTMLSelectElement) field.value = value;
}

/** @type {Runtime} */
let rt;
/** Loaded pipelines, kept for the next run while the URLs and precision stay the same. */
let loaded = /** @type {{ key: string, prior: WuerstchenPriorPipeline, decoder: WuerstchenDecoderPipeline } | null} */ (null);
let abort = /** @type {AbortController | null} */ (null);

const mb = (/** @type {number} */ bytes) => (bytes / 2 ** 20).toFixed(1);

function showDownload(/** @type {LoadProgress} */ p) {
  downloadBar.max = p.totalBytes;
  downloadBar.value = p.loadedBytes;
  const file = p.file.split('/').slice(-2).join('/');
  $('download-text').textContent = `${file}: ${mb(p.loadedBytes)} / ${mb(p.totalBytes)} MiB (${p.tensor})`;
}

/** A base URL as the page typed it (absolute, or relative to the page), without a trailing slash. */
const baseUrl = (/** @type {string} */ value) => new URL(value.trim(), location.href).href.replace(/\/+$/, '');

async function pipelines(/** @type {string} */ priorUrl, /** @type {string} */ decoderUrl, /** @type {'f16' | 'f32'} */ dtype) {
  const key = `${priorUrl}|${decoderUrl}|${dtype}`;
  if (loaded?.key === key) return loaded;
  loaded?.prior.dispose();
  loaded?.decoder.dispose();
  loaded = null;
  setState('loading');
  const options = { dtype, onProgress: showDownload };
  const prior = await WuerstchenPriorPipeline.fromPretrained(rt, priorUrl, options);
  try {
    const decoder = await WuerstchenDecoderPipeline.fromPretrained(rt, decoderUrl, options);
    loaded = { key, prior, decoder };
  } catch (err) {
    prior.dispose();
    throw err;
  }
  $('download-text').textContent += ' — all weights loaded';
  return loaded;
}

/** The first 3 channels of image 0 of latents [B, C, h, w], each stretched from its min..max to 0..255. */
function drawLatents(/** @type {Float32Array} */ data, /** @type {readonly number[]} */ shape) {
  const [, channels, height, width] = shape;
  const plane = height * width;
  const pixels = new ImageData(width, height);
  for (let c = 0; c < 3; c++) {
    const values = data.subarray(Math.min(c, channels - 1) * plane, (Math.min(c, channels - 1) + 1) * plane);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < plane; i++) pixels.data[4 * i + c] = (values[i] - lo) * scale;
  }
  for (let i = 0; i < plane; i++) pixels.data[4 * i + 3] = 255;
  preview.width = width;
  preview.height = height;
  /** @type {CanvasRenderingContext2D} */ (preview.getContext('2d')).putImageData(pixels, 0, 0);
}

function showImages(/** @type {HostTensor} */ images, /** @type {bigint} */ seed) {
  const container = $('images');
  container.replaceChildren();
  toRGBA(images).forEach(({ width, height, data }, i) => {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d')).putImageData(new ImageData(data, width, height), 0, 0);
    const link = document.createElement('a');
    link.textContent = 'Download PNG';
    link.download = `wuerstchen_${seed}_${i}.png`;
    canvas.toBlob((blob) => {
      if (blob) link.href = URL.createObjectURL(blob);
    }, 'image/png');
    const figure = document.createElement('figure');
    const caption = document.createElement('figcaption');
    caption.append(`seed ${seed}, image ${i} `, link);
    figure.append(canvas, caption);
    container.append(figure);
  });
}

async function generate() {
  const values = Object.fromEntries(new FormData(form));
  const number = (/** @type {string} */ name) => Number(values[name]);
  const seed = String(values.seed).trim() === '' ? BigInt(Math.floor(Math.random() * 2 ** 48)) : BigInt(String(values.seed));
  const dtype = values.dtype === 'f32' ? 'f32' : 'f16';
  const { prior, decoder } = await pipelines(baseUrl(String(values.prior)), baseUrl(String(values.decoder)), dtype);

  setState('running');
  abort = new AbortController();
  cancelButton.disabled = false;
  const priorSteps = number('prior_steps');
  const totalSteps = priorSteps + number('decoder_steps');
  stepBar.max = totalSteps;
  stepBar.value = 0;
  const started = performance.now();
  /** @param {StepInfo} info */
  const callback = async (info) => {
    const done = (info.stage === 'prior' ? 0 : priorSteps) + info.step + 1;
    stepBar.value = done;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    $('step-text').textContent = `${info.stage} step ${info.step + 1} / ${info.steps} (${seconds} s)`;
    drawLatents(await rt.read(info.latents), info.latents.shape);
  };
  const generator = new TorchGenerator(seed);
  const prompt = String(values.prompt);
  const negativePrompt = String(values.negative);
  const embeddings = await prior.call({
    prompt,
    negativePrompt,
    width: number('width'),
    height: number('height'),
    numImagesPerPrompt: number('images'),
    numInferenceSteps: priorSteps,
    guidanceScale: number('prior_guidance'),
    generator,
    callback,
    signal: abort.signal,
  });
  let images;
  try {
    images = await decoder.call({
      imageEmbeddings: embeddings,
      prompt,
      negativePrompt,
      numInferenceSteps: number('decoder_steps'),
      guidanceScale: number('decoder_guidance'),
      generator,
      callback,
      signal: abort.signal,
    });
  } finally {
    embeddings.dispose();
  }
  demo.images = images;
  showImages(images, seed);
  $('step-text').textContent += ' — done';
  setState('done');
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  $('error').textContent = '';
  generateButton.disabled = true;
  generate()
    .catch((err) => {
      if (abort?.signal.aborted) {
        $('step-text').textContent += ' — cancelled';
        setState('cancelled');
      } else {
        showError(err);
      }
    })
    .finally(() => {
      generateButton.disabled = false;
      cancelButton.disabled = true;
      abort = null;
    });
});

cancelButton.addEventListener('click', () => abort?.abort());

try {
  rt = await Runtime.create();
  const info = rt.adapterInfo;
  $('adapter').textContent =
    `${[info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter'} (${info.backend}); ` +
    `${rt.hasF16 ? 'shader-f16: f16 weights' : 'no shader-f16: f16 falls back to f32'}; ` +
    `max binding ${mb(rt.limits.maxStorageBufferBindingSize)} MiB`;
  generateButton.disabled = false;
  setState('ready');
} catch (err) {
  $('adapter').textContent = 'no WebGPU';
  showError(err);
}
