// A static file server for the demo page and the browser test: answers single Range requests with
// 206 (the pipelines stream weights tensor by tensor through them; `python3 -m http.server` cannot),
// sends CORS headers so a page on another origin may read the files, and listens on loopback only.
//   node scripts/serve.mjs [--port 8080] [root]      (root defaults to the repository)
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
};

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` against a file of `size` bytes: [start, end] inclusive, or null if unsatisfiable. */
function parseRange(header, size) {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  let start;
  let end;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  return start <= end && start < size ? [start, end] : null;
}

async function respond(root, request, response) {
  const headers = {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': 'Content-Range, Content-Length, Accept-Ranges',
    'Cache-Control': 'no-store',
  };
  if (request.method === 'OPTIONS') {
    response.writeHead(204, { ...headers, 'Access-Control-Allow-Headers': 'Range', 'Access-Control-Allow-Methods': 'GET, HEAD' });
    return response.end();
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, headers);
    return response.end();
  }
  let path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
  if (path.endsWith('/')) path += 'index.html';
  let file;
  let info;
  try {
    // Symlinks inside the root are followed (test fixtures link to each other); nothing outside it is served.
    file = await realpath(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) throw new Error('outside the root');
    info = await stat(file);
    if (!info.isFile()) throw new Error('not a file');
  } catch {
    response.writeHead(404, { ...headers, 'Content-Type': 'text/plain' });
    return response.end(`not found: ${path}\n`);
  }
  const type = TYPES[extname(file)] ?? 'application/octet-stream';
  const common = { ...headers, 'Content-Type': type, 'Accept-Ranges': 'bytes' };
  let start = 0;
  let end = info.size - 1;
  if (request.headers.range !== undefined) {
    const range = parseRange(request.headers.range, info.size);
    if (range === null) {
      response.writeHead(416, { ...common, 'Content-Range': `bytes */${info.size}` });
      return response.end();
    }
    [start, end] = range;
    response.writeHead(206, { ...common, 'Content-Range': `bytes ${start}-${end}/${info.size}`, 'Content-Length': end - start + 1 });
  } else {
    response.writeHead(200, { ...common, 'Content-Length': info.size });
  }
  if (request.method === 'HEAD' || info.size === 0) return response.end();
  createReadStream(file, { start, end }).pipe(response);
}

/** Serves `root` on 127.0.0.1:`port` (0: any free port); resolves with the server and its base URL. */
export async function serveStatic(root, port = 0) {
  const realRoot = await realpath(resolve(root));
  const server = createServer((request, response) => {
    respond(realRoot, request, response).catch((err) => {
      if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain' });
      response.end(`${err.message}\n`);
    });
  });
  await new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', done);
  });
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const portAt = args.indexOf('--port');
  const port = portAt >= 0 ? Number(args.splice(portAt, 2)[1]) : 8080;
  const root = args[0] ?? fileURLToPath(new URL('..', import.meta.url));
  const { url } = await serveStatic(root, port);
  console.log(`serving ${resolve(root)} at ${url}/ (demo: ${url}/examples/web/)`);
}
