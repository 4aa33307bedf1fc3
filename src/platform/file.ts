/**
 * Random-access byte sources (local files, HTTP ranges, memory) and atomic file writes: the only
 * module that touches the file system. `node:fs` is imported lazily, inside the functions that need
 * it, so browsers can load this module for `httpSource` and `memorySource`.
 */

/** Bytes that can be read at any offset without loading the whole: a checkpoint may be several GB. */
export interface ByteSource {
  /** Path or URL, used in error messages. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes starting at `offset`, in a fresh buffer (byteOffset 0, so typed views align). */
  read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
  close(): Promise<void>;
}

/** Node limits one read or write call to 2 GiB - 1 bytes; bigger requests are split into these steps. */
const MAX_IO_STEP = 1 << 30;

function checkRange(source: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`${source.name}: invalid read of ${length} bytes at offset ${offset}`);
  }
  if (offset + length > source.size) {
    throw new RangeError(
      `${source.name}: read of ${length} bytes at offset ${offset} runs past the end (${source.size} bytes)`,
    );
  }
}

/** `http://` and `https://` locations are read over the network, anything else from the file system. */
export function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** A local file, or for an http(s) URL an `httpSource` (range reads: huge files stream, tensor by tensor). */
export async function openFileSource(path: string): Promise<ByteSource> {
  if (isUrl(path)) return httpSource(path);
  const { open } = await import('node:fs/promises');
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (err) {
    await handle.close();
    throw err;
  }
  const source: ByteSource = {
    name: path,
    size,
    async read(offset, length) {
      checkRange(source, offset, length);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const step = Math.min(length - done, MAX_IO_STEP);
        const { bytesRead } = await handle.read(out, done, step, offset + done);
        if (bytesRead === 0) {
          throw new Error(`${path}: file ended at byte ${offset + done}, expected ${size} bytes (was it truncated?)`);
        }
        done += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
  return source;
}

/** The whole of `bytes`, read by copy so callers may keep or modify what they get. */
export function memorySource(name: string, bytes: Uint8Array): ByteSource {
  const source: ByteSource = {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      checkRange(source, offset, length);
      return bytes.slice(offset, offset + length);
    },
    async close() {},
  };
  return source;
}

/** A remote file read with HTTP Range requests; the server must answer them with 206 Partial Content. */
export async function httpSource(url: string, fetchImpl: typeof fetch = fetch): Promise<ByteSource> {
  // A one-byte range rather than HEAD: it proves the server honours ranges and its Content-Range
  // carries the full size even where HEAD is not allowed or Content-Length reflects compression.
  const probe = await fetchImpl(url, { headers: { Range: 'bytes=0-0' } });
  await probe.body?.cancel();
  if (probe.status !== 206) {
    throw new Error(
      `${url}: expected 206 Partial Content for a range request, got ${probe.status} ${probe.statusText}`,
    );
  }
  const total = /^bytes \d+-\d+\/(\d+)$/.exec(probe.headers.get('content-range') ?? '')?.[1];
  if (total === undefined) {
    throw new Error(`${url}: the range response has no Content-Range with the file size`);
  }
  const source: ByteSource = {
    name: url,
    size: Number(total),
    async read(offset, length) {
      checkRange(source, offset, length);
      if (length === 0) return new Uint8Array(0);
      const response = await fetchImpl(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
      if (response.status !== 206) {
        await response.body?.cancel();
        throw new Error(`${url}: range request for bytes ${offset}-${offset + length - 1} got ${response.status}`);
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.byteLength !== length) {
        throw new Error(`${url}: asked for ${length} bytes at offset ${offset}, got ${bytes.byteLength}`);
      }
      return bytes;
    },
    async close() {},
  };
  return source;
}

/**
 * Writes `chunks` to a temporary file next to `path`, flushes it and renames it over `path`, so readers
 * never see a half-written file. If anything fails, the temporary file is removed and `path` is untouched.
 */
export async function writeFileAtomic(
  path: string,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<void> {
  const { open, rename, rm } = await import('node:fs/promises');
  const { dirname, basename, join } = await import('node:path');
  const { randomUUID } = await import('node:crypto');
  const temp = join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
  const handle = await open(temp, 'wx').catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new Error(`cannot write ${path}: its folder ${dirname(path)} does not exist`) : err;
  });
  let closed = false;
  try {
    for await (const chunk of chunks) {
      for (let done = 0; done < chunk.byteLength; ) {
        const step = Math.min(chunk.byteLength - done, MAX_IO_STEP);
        const { bytesWritten } = await handle.write(chunk, done, step);
        done += bytesWritten;
      }
    }
    await handle.sync();
    closed = true;
    await handle.close();
    await rename(temp, path);
  } catch (err) {
    if (!closed) await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}
