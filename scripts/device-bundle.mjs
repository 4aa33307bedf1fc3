// Packs into .devbench/ what scripts/device-check.sh needs on a machine that has a GPU but no npm
// registry: bench.mjs and cli.mjs, each one ES module with only the `webgpu` package left external
// (bundles.tar.xz), and, when missing, this Node binary (node.xz), the `webgpu` package's Linux
// build (webgpu.tar.xz) and the golden checker from ../shared/tools (tools/). `..` from .devbench/
// is the repository root, so the bench finds test/fixtures as it does from bench/.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
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

// xz -9: the device tool sends at most 64 MiB, and the fixtures already take 40 MB of it.
const xz9 = { ...process.env, XZ_OPT: '-9' };
if (!existsSync(`${outdir}/node.xz`)) {
  // Stripped of their symbols, Node and Dawn pack 2 and 0.4 MB smaller.
  execFileSync('sh', ['-c', `strip -o node "${process.execPath}" && xz -9 node`], { cwd: outdir });
}
if (!existsSync(`${outdir}/webgpu.tar.xz`)) {
  const stage = `${outdir}/webgpu-stage`;
  for (const file of ['index.js', 'package.json', 'dist/linux-x64']) {
    cpSync(`${root}node_modules/webgpu/${file}`, `${stage}/webgpu/${file}`, { recursive: true });
  }
  execFileSync('strip', ['--strip-unneeded', `${stage}/webgpu/dist/linux-x64/dawn.node`]);
  execFileSync('tar', ['-cJf', `${outdir}/webgpu.tar.xz`, 'webgpu'], { cwd: stage, env: xz9 });
  rmSync(stage, { recursive: true });
}
const checker = `${root}../shared/tools`;
if (existsSync(checker)) {
  for (const file of ['check_against.py', 'st.py']) {
    rmSync(`${outdir}/tools/${file}`, { force: true }); // the shared copies are read-only, and so are ours
    cpSync(`${checker}/${file}`, `${outdir}/tools/${file}`);
  }
} else if (!existsSync(`${outdir}/tools/check_against.py`)) {
  console.warn(`device-bundle: ${checker} not found; copy check_against.py and st.py into ${outdir}/tools/`);
}
console.log(`device-bundle: ${outdir} (bundles.tar.xz, node.xz, webgpu.tar.xz, tools/)`);
