/**
 * Downloads Hugging Face Hub repos into the standard cache layout, so a Python user's cache is reused:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
 *     models--org--name/blobs/<etag>                 file contents, named by LFS sha256 or git blob sha1
 *     models--org--name/snapshots/<commit>/<path>    symlinks into blobs/
 *     models--org--name/refs/<revision>              the commit a branch or tag resolved to
 *
 * A download goes to blobs/<etag>.incomplete, resumes with a Range request after a dropped
 * connection, is verified (sha256 for LFS files, git's blob sha1 otherwise) and only then renamed
 * and linked: nothing unverified ever appears under snapshots/. Node and Deno only (file system).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';

export class HubError extends Error {
  override name = 'HubError';
}

export interface HubProgress {
  repoId: string;
  file: string;
  loaded: number;
  total: number;
}

export interface HubOptions {
  revision?: string;
  endpoint?: string;
  cacheDir?: string;
  token?: string;
  offline?: boolean;
  onProgress?: (p: HubProgress) => void;
  fetch?: typeof fetch;
  /** Attempts per file after dropped connections or failed verification (default 5). */
  maxAttempts?: number;
}

const env = (name: string): string | undefined => (typeof process !== 'undefined' ? process.env[name] : undefined);

export function hubCacheDir(): string {
  const hubCache = env('HF_HUB_CACHE');
  if (hubCache) return hubCache;
  return join(env('HF_HOME') ?? join(homedir(), '.cache', 'huggingface'), 'hub');
}

function resolved(options: HubOptions) {
  const offlineEnv = env('HF_HUB_OFFLINE');
  return {
    revision: options.revision ?? 'main',
    endpoint: (options.endpoint ?? env('HF_ENDPOINT') ?? 'https://huggingface.co').replace(/\/$/, ''),
    cacheDir: options.cacheDir ?? hubCacheDir(),
    token: options.token ?? env('HF_TOKEN'),
    offline: options.offline ?? (offlineEnv !== undefined && ['1', 'true', 'yes', 'on'].includes(offlineEnv.toLowerCase())),
    fetch: options.fetch ?? fetch,
    maxAttempts: options.maxAttempts ?? 5,
    onProgress: options.onProgress,
  };
}

type Resolved = ReturnType<typeof resolved>;

export function repoFolderName(repoId: string): string {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) throw new HubError(`'${repoId}' is not a Hub repo id of the form org/name`);
  return `models--${repoId.replace('/', '--')}`;
}

const isCommit = (rev: string) => /^[0-9a-f]{40}$/.test(rev);

function headers(o: Resolved, extra: Record<string, string> = {}): Record<string, string> {
  return o.token ? { authorization: `Bearer ${o.token}`, ...extra } : extra;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The commit a revision points to in the cache, for offline use. */
async function cachedCommit(repoDir: string, revision: string): Promise<string | null> {
  if (isCommit(revision)) return revision;
  try {
    return (await readFile(join(repoDir, 'refs', revision), 'utf8')).trim();
  } catch {
    return null;
  }
}

interface FileMeta {
  commit: string;
  etag: string;
  size: number;
  /** Where to GET the bytes (after the Hub's redirect to its CDN). */
  url: string;
}

/** HEAD on the resolve endpoint, following only relative redirects (renamed repos), as huggingface_hub does. */
async function fileMeta(repoId: string, filename: string, o: Resolved): Promise<FileMeta> {
  let url = `${o.endpoint}/${repoId}/resolve/${encodeURIComponent(o.revision)}/${filename.split('/').map(encodeURIComponent).join('/')}`;
  for (let hops = 0; hops < 5; hops++) {
    const res = await o.fetch(url, { method: 'HEAD', redirect: 'manual', headers: headers(o, { 'accept-encoding': 'identity' }) });
    const location = res.headers.get('location');
    const relativeRedirect = res.status >= 300 && res.status < 400 && location && location.startsWith('/');
    if (relativeRedirect) {
      url = new URL(location, url).toString();
      continue;
    }
    if (res.status === 401 || res.status === 403) {
      throw new HubError(`${repoId}/${filename}: access denied (HTTP ${res.status}); set HF_TOKEN if the repo is gated or private`);
    }
    if (res.status === 404) throw new HubError(`${repoId}/${filename}: not found at revision '${o.revision}' (HTTP 404)`);
    if (!(res.ok || (res.status >= 300 && res.status < 400))) {
      throw new HubError(`${repoId}/${filename}: HEAD ${url} answered HTTP ${res.status}`);
    }
    const commit = res.headers.get('x-repo-commit');
    const etag = (res.headers.get('x-linked-etag') ?? res.headers.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '');
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    if (!commit || !etag || !Number.isSafeInteger(size)) {
      throw new HubError(`${repoId}/${filename}: the server did not send X-Repo-Commit, an ETag and a size`);
    }
    return { commit, etag, size, url: location ? new URL(location, url).toString() : url };
  }
  throw new HubError(`${repoId}/${filename}: too many redirects`);
}

/** sha256 for LFS files (64 hex digits), git's blob sha1 (`blob <size>\0` + bytes) otherwise. */
async function verify(path: string, etag: string, size: number): Promise<boolean> {
  const lfs = /^[0-9a-f]{64}$/.test(etag);
  const hash = createHash(lfs ? 'sha256' : 'sha1');
  if (!lfs) hash.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex') === etag;
}

/** Appends the remaining bytes of `meta.url` to `partial`, resuming from its current length. */
async function fetchInto(partial: string, meta: FileMeta, repoId: string, filename: string, o: Resolved): Promise<void> {
  let have = (await exists(partial)) ? (await stat(partial)).size : 0;
  if (have > meta.size) {
    await rm(partial);
    have = 0;
  }
  if (have === meta.size) return;
  const res = await o.fetch(meta.url, { headers: headers(o, have ? { range: `bytes=${have}-` } : {}) });
  if (have && res.status === 200) have = 0; // server ignored the range: start over
  else if (!(res.status === 200 || res.status === 206)) {
    await res.body?.cancel();
    throw new HubError(`${repoId}/${filename}: GET answered HTTP ${res.status}`);
  }
  const file = await open(partial, have ? 'a' : 'w');
  try {
    let loaded = have;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await file.write(chunk);
      loaded += chunk.byteLength;
      o.onProgress?.({ repoId, file: filename, loaded, total: meta.size });
    }
  } finally {
    await file.close();
  }
}

/** Downloads one file of a repo (or finds it in the cache) and returns its path under snapshots/. */
export async function hubDownload(repoId: string, filename: string, options: HubOptions = {}): Promise<string> {
  const o = resolved(options);
  const repoDir = join(o.cacheDir, repoFolderName(repoId));
  if (o.offline) {
    const commit = await cachedCommit(repoDir, o.revision);
    const path = commit && join(repoDir, 'snapshots', commit, filename);
    if (!path || !(await exists(path))) {
      throw new HubError(`${repoId}/${filename}: not in the cache at ${repoDir} and HF_HUB_OFFLINE is set`);
    }
    return path;
  }
  const meta = await fileMeta(repoId, filename, o);
  const snapshotPath = join(repoDir, 'snapshots', meta.commit, filename);
  const blob = join(repoDir, 'blobs', meta.etag);
  if (!(await exists(blob))) {
    await mkdir(dirname(blob), { recursive: true });
    const partial = `${blob}.incomplete`;
    let lastError: unknown = null;
    let verified = false;
    for (let attempt = 0; attempt < o.maxAttempts && !verified; attempt++) {
      try {
        await fetchInto(partial, meta, repoId, filename, o);
      } catch (err) {
        if (err instanceof HubError) throw err;
        lastError = err; // dropped connection: resume from what arrived
        continue;
      }
      if ((await stat(partial)).size < meta.size) continue;
      verified = await verify(partial, meta.etag, meta.size);
      if (!verified) {
        lastError = new HubError(`${repoId}/${filename}: content does not match its hash ${meta.etag}`);
        await rm(partial); // corrupted: fetch it again from scratch
      }
    }
    if (!verified) {
      const why = lastError instanceof Error ? lastError.message : 'incomplete';
      throw new HubError(`${repoId}/${filename}: download failed after ${o.maxAttempts} attempts (${why})`);
    }
    await rename(partial, blob);
  }
  if (!(await exists(snapshotPath))) {
    await mkdir(dirname(snapshotPath), { recursive: true });
    await symlink(relative(dirname(snapshotPath), blob), snapshotPath);
  }
  if (!isCommit(o.revision)) {
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', o.revision), meta.commit);
  }
  return snapshotPath;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/**
 * Downloads the files of a repo matching `allowPatterns` (globs over repo paths, `*` within one
 * segment) and returns the snapshot folder. Offline, returns the cached snapshot.
 */
export async function snapshotDownload(repoId: string, allowPatterns: readonly string[], options: HubOptions = {}): Promise<string> {
  const o = resolved(options);
  const repoDir = join(o.cacheDir, repoFolderName(repoId));
  const patterns = allowPatterns.map(globToRegExp);
  if (o.offline) {
    const commit = await cachedCommit(repoDir, o.revision);
    const dir = commit && join(repoDir, 'snapshots', commit);
    if (!dir || !(await exists(dir))) {
      throw new HubError(`${repoId}: revision '${o.revision}' is not in the cache at ${repoDir} and HF_HUB_OFFLINE is set`);
    }
    return dir;
  }
  const res = await o.fetch(`${o.endpoint}/api/models/${repoId}/revision/${encodeURIComponent(o.revision)}`, { headers: headers(o) });
  if (!res.ok) {
    throw new HubError(`${repoId}: listing revision '${o.revision}' answered HTTP ${res.status}${res.status === 401 ? ' (set HF_TOKEN)' : ''}`);
  }
  const info = (await res.json()) as { sha?: string; siblings?: { rfilename: string }[] };
  if (typeof info.sha !== 'string' || !Array.isArray(info.siblings)) throw new HubError(`${repoId}: unexpected listing from the Hub`);
  const files = info.siblings.map((s) => s.rfilename).filter((f) => patterns.some((p) => p.test(f)));
  // Pin every file to the listed commit so a push during the download cannot mix revisions.
  for (const file of files) await hubDownload(repoId, file, { ...options, revision: info.sha });
  if (!isCommit(o.revision)) {
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', o.revision), info.sha);
  }
  return join(repoDir, 'snapshots', info.sha);
}
