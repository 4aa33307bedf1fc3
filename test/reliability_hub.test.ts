import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubError, hubDownload } from '../src/io/hub.js';

// Downloads that die at any byte: the connection drops at chosen offsets (possibly several times in
// one download, possibly over several runs), the partial blob resumes with a Range request, and
// nothing reaches snapshots/ before its SHA-256 is verified.
const COMMIT = 'b'.repeat(40);
const REPO = 'warp-ai/wuerstchen-cuts';
const FILE = 'decoder/diffusion_pytorch_model.safetensors';
const SMALL = 'decoder/config.json';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Uint8Array) => createHash('sha1').update(`blob ${b.byteLength}\0`).update(b).digest('hex');

const weights = Uint8Array.from({ length: 200_003 }, (_, i) => (i * 7919 + (i >> 9)) % 251);
const config = new TextEncoder().encode(`{"c_in": 4, "padding": "${'x'.repeat(5000)}"}\n`);

/** Each GET sends its bytes from the requested start and, if a cut is queued, stops after that many. */
const server = { cuts: [] as number[], rangeStarts: [] as number[], ignoreRange: false, corruptNext: false };
let http: Server;
let endpoint = '';

function serve(res: ServerResponse, bytes: Uint8Array, range: string | undefined, method: string) {
  let start = 0;
  if (range && !server.ignoreRange) {
    start = Number(/bytes=(\d+)-/.exec(range)![1]);
    res.writeHead(206, { 'content-length': bytes.byteLength - start, 'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` });
  } else {
    res.writeHead(200, { 'content-length': bytes.byteLength });
  }
  if (method === 'HEAD') return res.end();
  server.rangeStarts.push(start);
  let body = bytes.subarray(start);
  if (server.corruptNext) {
    server.corruptNext = false;
    body = body.slice();
    body[body.byteLength >> 1] ^= 0x5a;
  }
  const cut = server.cuts.shift();
  if (cut === undefined) return res.end(body);
  // Send the bytes before the cut, then close the connection (FIN, so they all arrive) mid-body.
  res.write(body.subarray(0, cut), () => res.socket?.end());
}

beforeAll(async () => {
  http = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === `/cdn/${sha256(weights)}`) return serve(res, weights, req.headers.range, req.method!);
    const m = new RegExp(`^/${REPO}/resolve/[^/]+/(.+)$`).exec(url.pathname);
    if (m?.[1] === FILE) {
      res.writeHead(302, {
        location: `${endpoint}/cdn/${sha256(weights)}`,
        'x-repo-commit': COMMIT,
        'x-linked-etag': `"${sha256(weights)}"`,
        'x-linked-size': String(weights.byteLength),
      });
      return res.end();
    }
    if (m?.[1] === SMALL) {
      res.setHeader('x-repo-commit', COMMIT);
      res.setHeader('etag', `"${gitSha1(config)}"`);
      return serve(res, config, req.headers.range, req.method!);
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(http.address() as import('node:net').AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

let cacheDir = '';
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'hub-cuts-'));
  Object.assign(server, { cuts: [], rangeStarts: [], ignoreRange: false, corruptNext: false });
  return () => rm(cacheDir, { recursive: true, force: true });
});

const repoDir = () => join(cacheDir, 'models--warp-ai--wuerstchen-cuts');
const snapshotPath = (file: string) => join(repoDir(), 'snapshots', COMMIT, file);
const exists = (path: string) => stat(path).then(() => true, () => false);

/** Downloads `file`, checking at every progress report that nothing is linked under snapshots/ yet. */
async function download(file: string, maxAttempts = 5): Promise<{ path: string; reports: number }> {
  let reports = 0;
  let linkedEarly = false;
  const path = await hubDownload(REPO, file, {
    endpoint,
    cacheDir,
    maxAttempts,
    onProgress: () => {
      reports++;
      void exists(snapshotPath(file)).then((linked) => (linkedEarly ||= linked));
    },
  });
  expect(linkedEarly).toBe(false);
  return { path, reports };
}

const partialPath = () => join(repoDir(), 'blobs', `${sha256(weights)}.incomplete`);

describe('Hub downloads that die at any byte', () => {
  // A dropped connection loses the bytes still queued in the response stream, so the resume point
  // is at most the cut: whatever reached the partial blob.
  it.each([0, 1, 4095, 4096, 65_536, 100_001, 199_999, 200_002])('a connection dropped after %i bytes: resumed, verified, linked only then', async (cut) => {
    server.cuts = [cut];
    const { path } = await download(FILE);
    expect(sha256(await readFile(path))).toBe(sha256(weights));
    expect(server.rangeStarts).toHaveLength(2);
    expect(server.rangeStarts[1]).toBeLessThanOrEqual(cut);
    expect(await readdir(join(repoDir(), 'blobs'))).toEqual([sha256(weights)]);
  });

  it.each([1, 4095, 4096, 100_001, 200_002, 200_003])('a process that died after writing %i bytes: the next run asks for exactly the rest', async (have) => {
    await mkdir(join(repoDir(), 'blobs'), { recursive: true });
    await writeFile(partialPath(), weights.subarray(0, have));
    const { path } = await download(FILE);
    expect(sha256(await readFile(path))).toBe(sha256(weights));
    expect(server.rangeStarts).toEqual(have === weights.byteLength ? [] : [have]);
    expect(await exists(partialPath())).toBe(false);
  });

  it('four drops in one download: every retry resumes, and the file verifies', async () => {
    server.cuts = [10_000, 1, 50_000, 77_777];
    const { path } = await download(FILE);
    expect(sha256(await readFile(path))).toBe(sha256(weights));
    expect(server.rangeStarts).toHaveLength(5);
    expect(server.rangeStarts.every((start, i) => i === 0 || start >= server.rangeStarts[i - 1])).toBe(true);
  });

  it('a run that gives up leaves only the partial blob, nothing under snapshots/; the next run resumes it', async () => {
    server.cuts = [123_456];
    await expect(download(FILE, 1)).rejects.toThrow(HubError);
    expect(await exists(join(repoDir(), 'snapshots'))).toBe(false);
    const have = (await stat(partialPath())).size;
    expect(have).toBeLessThanOrEqual(123_456);
    server.rangeStarts = [];
    const { path } = await download(FILE);
    expect(sha256(await readFile(path))).toBe(sha256(weights));
    expect(server.rangeStarts).toEqual([have]);
  });

  it('a partial blob corrupted on disk is caught by the SHA-256 after resuming, and fetched again whole', async () => {
    await mkdir(join(repoDir(), 'blobs'), { recursive: true });
    const partial = weights.slice(0, 100_000);
    partial[500] ^= 0xff;
    await writeFile(partialPath(), partial);
    const { path } = await download(FILE);
    expect(sha256(await readFile(path))).toBe(sha256(weights));
    expect(server.rangeStarts).toEqual([100_000, 0]);
  });

  it('a server that ignores the Range header after a drop: the download starts over and verifies', async () => {
    await mkdir(join(repoDir(), 'blobs'), { recursive: true });
    await writeFile(partialPath(), weights.subarray(0, 30_000));
    server.ignoreRange = true;
    const { path } = await download(FILE);
    expect(sha256(await readFile(path))).toBe(sha256(weights));
    expect(server.rangeStarts).toEqual([0]);
  });

  it('small (git-hashed) files survive a drop and a corrupted transfer too', async () => {
    server.cuts = [2500];
    const first = await download(SMALL);
    expect(await readFile(first.path)).toEqual(Buffer.from(config));
    expect(server.rangeStarts[1]).toBeLessThanOrEqual(2500);
    await rm(repoDir(), { recursive: true });
    server.rangeStarts = [];
    server.corruptNext = true;
    const second = await download(SMALL);
    expect(await readFile(second.path)).toEqual(Buffer.from(config));
    expect(server.rangeStarts).toEqual([0, 0]);
  });
});
