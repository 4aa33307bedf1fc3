// Bundles the bench and the CLI into .devbench/ for a machine that has a GPU but no npm registry
// (scripts/device-check.sh runs them there): bench.mjs and cli.mjs, each one ES module with only the
// `webgpu` package left external, packed as .devbench/bundles.tar.xz. `..` from .devbench/ is the
// repository root, so the bench finds test/fixtures as it does from bench/.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}.devbench`;
mkdirSync(outdir, { recursive: true });
execFileSync('node', [`${root}scripts/embed-shaders.mjs`], { stdio: 'inherit' });

const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['webgpu'],
  // CommonJS dependencies (pngjs) call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
};
await build({ ...common, entryPoints: [`${root}bench/run.ts`], outfile: `${outdir}/bench.mjs` });
await build({
  ...common,
  stdin: {
    contents: "import { main } from './src/cli/main.ts'; process.exitCode = await main(process.argv.slice(2));",
    resolveDir: root,
    loader: 'ts',
  },
  outfile: `${outdir}/cli.mjs`,
});
execFileSync('tar', ['-cJf', 'bundles.tar.xz', 'bench.mjs', 'cli.mjs'], { cwd: outdir });
console.log(`device-bundle: ${outdir}/bundles.tar.xz`);
