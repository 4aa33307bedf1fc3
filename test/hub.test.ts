import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubError, hubDownload, snapshotDownload } from '../src/io/hub.js';

const COMMIT = 'a'.repeat(40);
const REPO = 'warp-ai/wuerstchen-tiny';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Uint8Array) => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');

const weights = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251);
const files: Record<string, { bytes: Uint8Array; lfs: boolean }> = {
  'model_index.json': { bytes: new TextEncoder().encode('{"_class_name": "WuerstchenDecoderPipeline"}\n'), lfs: false },
  'decoder/config.json': { bytes: new TextEncoder().encode('{"c_in": 4}\n'), lfs: false },
  'decoder/diffusion_pytorch_model.safetensors': { bytes: weights, lfs: true },
  'decoder/diffusion_pytorch_model.bin': { bytes: weights, lfs: true },
};

/** Imitates the Hub: resolve endpoints (HEAD + 302 to a CDN for LFS files), ranges, a listing API. */
const faults = { dropAfter: 0, corruptOnce: false, gets: 0, rangeGets: 0, authSeen: '' };
let server: Server;
let endpoint = '';

function serve(res: import('node:http').ServerResponse, bytes: Uint8Array, range: string | undefined, method: string) {
  let start = 0;
  if (range) {
    start = Number(/bytes=(\d+)-/.exec(range)![1]);
    res.writeHead(206, { 'content-length': bytes.byteLength - start, 'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` });
  } else {
    res.writeHead(200, { 'content-length': bytes.byteLength });
  }
  if (method === 'HEAD') return res.end();
  let body = bytes.subarray(start);
  if (faults.corruptOnce) {
    faults.corruptOnce = false;
    body = body.slice();
    body[1234] ^= 0xff;
  }
  if (faults.dropAfter) {
    const n = faults.dropAfter;
    faults.dropAfter = 0;
    res.write(body.subarray(0, n), () => res.destroy());
    return;
  }
  res.end(body);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    faults.authSeen = req.headers.authorization ?? '';
    if (url.pathname === `/api/models/${REPO}/revision/main`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ sha: COMMIT, siblings: Object.keys(files).map((rfilename) => ({ rfilename })) }));
    }
    const cdn = /^\/cdn\/([0-9a-f]+)$/.exec(url.pathname);
    if (cdn) {
      const file = Object.values(files).find((f) => sha256(f.bytes) === cdn[1])!;
      if (req.method === 'GET') {
        faults.gets++;
        if (req.headers.range) faults.rangeGets++;
      }
      return serve(res, file.bytes, req.headers.range, req.method!);
    }
    const m = new RegExp(`^/${REPO}/resolve/([^/]+)/(.+)$`).exec(url.pathname);
    const file = m && files[decodeURIComponent(m[2])];
    if (!file || (m[1] !== 'main' && m[1] !== COMMIT)) {
      res.writeHead(404);
      return res.end();
    }
    if (file.lfs) {
      res.writeHead(302, {
        location: `${endpoint}/cdn/${sha256(file.bytes)}`,
        'x-repo-commit': COMMIT,
        'x-linked-etag': `"${sha256(file.bytes)}"`,
        'x-linked-size': String(file.bytes.byteLength),
      });
      return res.end();
    }
    res.setHeader('x-repo-commit', COMMIT);
    res.setHeader('etag', `"${gitSha1(file.bytes)}"`);
    serve(res, file.bytes, req.headers.range, req.method!);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

let cacheDir = '';
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'hub-'));
  Object.assign(faults, { dropAfter: 0, corruptOnce: false, gets: 0, rangeGets: 0 });
  return () => rm(cacheDir, { recursive: true, force: true });
});

const repoDir = () => join(cacheDir, 'models--warp-ai--wuerstchen-tiny');

describe('Hub download into the Hugging Face cache layout', () => {
  it('downloads a pipeline snapshot: blobs by hash, snapshot symlinks, refs/main', async () => {
    const progress: number[] = [];
    const dir = await snapshotDownload(REPO, ['model_index.json', '*/*.json', '*/*.safetensors'], {
      endpoint,
      cacheDir,
      token: 'hf_secret',
      onProgress: (p) => progress.push(p.loaded),
    });
    expect(dir).toBe(join(repoDir(), 'snapshots', COMMIT));
    expect((await readdir(join(dir, 'decoder'))).sort()).toEqual(['config.json', 'diffusion_pytorch_model.safetensors']);
    expect(await readFile(join(dir, 'decoder/diffusion_pytorch_model.safetensors'))).toEqual(Buffer.from(weights));
    expect(await readlink(join(dir, 'decoder/diffusion_pytorch_model.safetensors'))).toBe(`../../../blobs/${sha256(weights)}`);
    expect((await readFile(join(repoDir(), 'refs', 'main'), 'utf8')).trim()).toBe(COMMIT);
    expect(faults.authSeen).toBe('Bearer hf_secret');
    expect(progress.at(-1)).toBe(weights.byteLength);
  });

  it('works offline from the cache after a first run, and says so when a file is not cached', async () => {
    await snapshotDownload(REPO, ['model_index.json', 'decoder/*.safetensors'], { endpoint, cacheDir });
    const dir = await snapshotDownload(REPO, ['*'], { cacheDir, offline: true, endpoint: 'http://127.0.0.1:1' });
    expect(await readFile(join(dir, 'model_index.json'), 'utf8')).toContain('WuerstchenDecoderPipeline');
    const path = await hubDownload(REPO, 'decoder/diffusion_pytorch_model.safetensors', { cacheDir, offline: true });
    expect((await readFile(path)).byteLength).toBe(weights.byteLength);
    await expect(hubDownload(REPO, 'decoder/config.json', { cacheDir, offline: true })).rejects.toThrow(
      new HubError(`${REPO}/decoder/config.json: not in the cache at ${repoDir()} and HF_HUB_OFFLINE is set`),
    );
  });

  it('resumes a download whose connection dropped mid-file with a Range request', async () => {
    faults.dropAfter = 100_000;
    const path = await hubDownload(REPO, 'decoder/diffusion_pytorch_model.safetensors', { endpoint, cacheDir });
    expect(await readFile(path)).toEqual(Buffer.from(weights));
    expect(faults.rangeGets).toBe(1);
  });

  it('detects a corrupted byte by its SHA-256, re-fetches, and never links an unverified blob', async () => {
    faults.corruptOnce = true;
    const path = await hubDownload(REPO, 'decoder/diffusion_pytorch_model.safetensors', { endpoint, cacheDir });
    expect(sha256(await readFile(path))).toBe(sha256(weights));
    expect(faults.gets).toBe(2);
    expect(await readdir(join(repoDir(), 'blobs'))).toEqual([sha256(weights)]);
  });

  it('gives up with a clear error when every attempt is corrupted, leaving no snapshot', async () => {
    const attempts = 2;
    let calls = 0;
    const flaky: typeof fetch = async (input, init) => {
      if (init?.method !== 'HEAD') faults.corruptOnce = true;
      calls++;
      return fetch(input, init);
    };
    await expect(
      hubDownload(REPO, 'decoder/diffusion_pytorch_model.safetensors', { endpoint, cacheDir, fetch: flaky, maxAttempts: attempts }),
    ).rejects.toThrow(
      new HubError(
        `${REPO}/decoder/diffusion_pytorch_model.safetensors: download failed after 2 attempts ` +
          `(${REPO}/decoder/diffusion_pytorch_model.safetensors: content does not match its hash ${sha256(weights)})`,
      ),
    );
    expect(calls).toBe(3);
    await expect(readdir(join(repoDir(), 'snapshots'))).rejects.toThrow();
  });

  it('verifies small (non-LFS) files by their git blob sha1', async () => {
    const path = await hubDownload(REPO, 'model_index.json', { endpoint, cacheDir });
    expect(await readlink(path)).toBe(`../../blobs/${gitSha1(files['model_index.json'].bytes)}`);
  });

  it('names a missing file and a malformed repo id', async () => {
    await expect(hubDownload(REPO, 'prior/config.json', { endpoint, cacheDir })).rejects.toThrow(
      new HubError(`${REPO}/prior/config.json: not found at revision 'main' (HTTP 404)`),
    );
    await expect(hubDownload('not a repo', 'x', { endpoint, cacheDir })).rejects.toThrow(
      new HubError(`'not a repo' is not a Hub repo id of the form org/name`),
    );
  });
});
