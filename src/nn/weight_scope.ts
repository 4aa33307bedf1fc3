/**
 * Loads a model's parameters by their literal state-dict keys, candle style:
 * `root.pp('blocks').pp(3).tensor('channelwise.0.weight', [c * 4, c])`. Every load checks the
 * shape; `finish()` fails unless every key of the checkpoint was used.
 */
import { SafetensorsError, type TensorReader } from '../io/safetensors.js';
import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import { Tensor, type TensorOwner } from '../runtime/tensor.js';

export class WeightError extends Error {
  override name = 'WeightError';
}

/** Upload pieces of this size, so a big tensor never needs a second full-size host copy. */
const CHUNK_BYTES = 16 << 20;

/** Reported after each tensor of a checkpoint is loaded (or, in a dry run, checked). */
export interface LoadProgress {
  /** The checkpoint's path or URL. */
  file: string;
  tensor: string;
  /** Bytes of the checkpoint's tensors done so far, out of `totalBytes` (the whole checkpoint). */
  loadedBytes: number;
  totalBytes: number;
}

export type LoadProgressCallback = (progress: LoadProgress) => void;

export interface WeightLoaderOptions {
  /**
   * Check keys and shapes only: tensors come back as views of one tiny placeholder buffer and no
   * data is read or uploaded. For validating full-size checkpoints (and manifests) quickly.
   */
  dryRun?: boolean;
  /** Called after each tensor: weights may stream from a URL for minutes, and a page wants to show that. */
  onProgress?: LoadProgressCallback;
}

/**
 * One 4-byte stand-in buffer per runtime behind every dry-run tensor, made outside the pool and
 * kept for the runtime's life: checking a checkpoint takes nothing from the pool, however often.
 */
const placeholders = new WeakMap<Runtime, Tensor>();
/** The stand-in belongs to no scope and is never released. */
const PLACEHOLDER_OWNER: TensorOwner = { track() {}, releaseTensorBuffer() {} };

export class WeightLoader {
  readonly used = new Set<string>();
  /** Device tensors made so far, freed if the model cannot be completed. */
  private readonly created: Tensor[] = [];
  private loadedBytes = 0;
  private totalBytes: number | undefined;

  constructor(
    readonly rt: Runtime,
    readonly reader: TensorReader,
    /** Names the checkpoint in errors. */
    readonly file: string,
    /** Device dtype of the loaded parameters. */
    readonly dtype: DType,
    readonly options: WeightLoaderOptions = {},
  ) {}

  /** A shape-only tensor for dry runs: shares a 4-byte buffer and must never be dispatched on. */
  placeholderOf(shape: readonly number[], dtype: DType): Tensor {
    let base = placeholders.get(this.rt);
    if (!base) {
      const buffer = this.rt.device.createBuffer({ size: 4, usage: 0x80, label: 'dry-run placeholder' }); // STORAGE
      base = new Tensor(PLACEHOLDER_OWNER, [1], 'f32', buffer);
      placeholders.set(this.rt, base);
    }
    return new Tensor(this.rt, shape, this.rt.storageDType(dtype), base.buffer, 0, base);
  }

  root(): WeightScope {
    return new WeightScope(this, '');
  }

  shapeOf(key: string, expected: readonly number[]): void {
    const info = this.reader.tensors.get(key);
    if (!info) throw new WeightError(`${this.file}: missing tensor '${key}' (expected shape [${expected.join(', ')}])`);
    if (info.shape.length !== expected.length || info.shape.some((d, i) => d !== expected[i])) {
      throw new WeightError(
        `${this.file}: tensor '${key}' has shape [${info.shape.join(', ')}], expected [${expected.join(', ')}]`,
      );
    }
    this.used.add(key);
  }

  /** Counts `key` as done and tells `onProgress`. */
  reportLoaded(key: string): void {
    const { onProgress } = this.options;
    if (!onProgress) return;
    const size = (info: { begin: number; end: number }) => info.end - info.begin;
    this.totalBytes ??= [...this.reader.tensors.values()].reduce((sum, info) => sum + size(info), 0);
    this.loadedBytes += size(this.reader.tensors.get(key)!);
    onProgress({ file: this.file, tensor: key, loadedBytes: this.loadedBytes, totalBytes: this.totalBytes });
  }

  /** Records a tensor made for the model, so that `build` can free it if loading fails. */
  keepForCleanup(t: Tensor): Tensor {
    this.created.push(t);
    return t;
  }

  /**
   * Builds a model with `build` (which loads through this loader's scopes), then requires every key
   * of the checkpoint to be used. On any failure the tensors loaded so far are freed first.
   */
  async build<M>(build: () => Promise<M>): Promise<M> {
    try {
      const model = await build();
      this.finish();
      return model;
    } catch (err) {
      for (const t of this.created) t.dispose();
      throw err;
    } finally {
      this.created.length = 0;
    }
  }

  /** Every tensor of the checkpoint must have been used: a stray key means a wrong architecture or config. */
  finish(): void {
    const unused = [...this.reader.tensors.keys()].filter((k) => !this.used.has(k));
    if (unused.length) {
      const shown = unused.slice(0, 8).map((k) => `'${k}'`).join(', ');
      throw new WeightError(
        `${this.file}: ${unused.length} tensor(s) not used by the model: ${shown}${unused.length > 8 ? ', …' : ''}`,
      );
    }
  }
}

export class WeightScope {
  constructor(
    readonly loader: WeightLoader,
    readonly prefix: string,
  ) {}

  pp(name: string | number): WeightScope {
    return new WeightScope(this.loader, this.key(String(name)));
  }

  key(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  has(name: string): boolean {
    return this.loader.reader.tensors.has(this.key(name));
  }

  /** Marks a tensor as used without loading it (e.g. BatchNorm's `num_batches_tracked`). */
  skip(name: string, shape: readonly number[]): void {
    this.loader.shapeOf(this.key(name), shape);
    this.loader.reportLoaded(this.key(name));
  }

  /** The parameter as f32 host values, for load-time transforms (reordering, folding). */
  async host(name: string, shape: readonly number[]): Promise<Float32Array> {
    const key = this.key(name);
    this.loader.shapeOf(key, shape);
    // Dry runs hand back a 1-element stand-in: load-time transforms must tolerate it (their output is a placeholder too).
    const values = this.loader.options.dryRun ? new Float32Array(1) : await this.loader.reader.readF32(key);
    this.loader.reportLoaded(key);
    return values;
  }

  /** The parameter on the device in the loader's dtype (or `dtype`), uploaded in chunks when stored alike. */
  async tensor(name: string, shape: readonly number[], dtype: DType = this.loader.dtype): Promise<Tensor> {
    const key = this.key(name);
    this.loader.shapeOf(key, shape);
    const t = await this.load(key, shape, dtype);
    this.loader.reportLoaded(key);
    return this.loader.options.dryRun ? t : this.loader.keepForCleanup(t);
  }

  private async load(key: string, shape: readonly number[], dtype: DType): Promise<Tensor> {
    if (this.loader.options.dryRun) return this.loader.placeholderOf(shape, dtype);
    const { rt, reader } = this.loader;
    const stored = rt.storageDType(dtype);
    const source = reader.tensors.get(key)!.dtype;
    try {
      if ((source === 'F32' && stored === 'f32') || (source === 'F16' && stored === 'f16')) {
        const t = rt.empty(shape, stored, key);
        for await (const chunk of reader.readChunks(key, CHUNK_BYTES)) rt.writeBytes(t, chunk.offset, chunk.bytes);
        return t;
      }
      return stored === 'f16'
        ? rt.uploadF16Bits(await reader.readF16Bits(key), shape, 'f16', key)
        : rt.upload(await reader.readF32(key), shape, 'f32', key);
    } catch (err) {
      if (err instanceof SafetensorsError || err instanceof WeightError) throw err;
      throw new WeightError(`${this.loader.file}: loading '${key}': ${(err as Error).message}`);
    }
  }

  /** Uploads host values computed at load time (e.g. a reordered weight) in the loader's dtype. */
  upload(data: Float32Array, shape: readonly number[], label: string, dtype: DType = this.loader.dtype): Tensor {
    if (this.loader.options.dryRun) return this.loader.placeholderOf(shape, dtype);
    return this.loader.keepForCleanup(this.loader.rt.upload(data, shape, dtype, this.key(label)));
  }
}
