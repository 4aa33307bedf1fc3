// Bundles src/web.ts into one browser ES module, examples/web/dist/wuerstchen.js (run by `npm run build:web`,
// after embed-shaders.mjs). Fails if the bundle would load a node:* module or the `webgpu` package when it
// starts: those may only appear as lazy import() calls on paths a browser never takes.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outfile = `${root}examples/web/dist/wuerstchen.js`;

const result = await build({
  entryPoints: [`${root}src/web.ts`],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  metafile: true,
  // Node-only code paths: reached through import() only (file system, Dawn); package.json's
  // "sideEffects" lets esbuild drop the statically imported Node-only modules nothing uses (io/hub.ts).
  external: ['node:*', 'webgpu'],
  logLevel: 'warning',
});

const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint);
const eager = output.imports.filter((i) => i.external && i.kind !== 'dynamic-import');
if (eager.length) {
  console.error(`build-web: the bundle imports ${eager.map((i) => i.path).join(', ')} statically; a browser cannot load it`);
  process.exit(1);
}
const lazy = [...new Set(output.imports.filter((i) => i.external).map((i) => i.path))];
console.log(`build-web: ${outfile} (${(output.bytes / 1024).toFixed(0)} KiB; lazy Node-only imports: ${lazy.join(', ') || 'none'})`);
