import { CliError, type Command } from './command.js';

// Each sub-command lives in its own module under commands/ and is loaded only when invoked,
// so `--help` and CPU-only commands never touch the GPU.
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  doctor: { summary: 'print the WebGPU adapter, its limits and features, whether f16 is usable and the kernel set picked', load: async () => (await import('./commands/doctor.js')).doctor },
  generate: { summary: 'text to image (downloads the real weights on first use)', load: async () => (await import('./commands/generate.js')).generate },
  forward: { summary: 'run one model component on golden-named inputs (research harness)', load: async () => (await import('./commands/forward.js')).forward },
  tokenize: { summary: 'CLIP token ids and attention masks of prompts (JSON in, JSON out)', load: async () => (await import('./commands/tokenize.js')).tokenize },
  inspect: { summary: 'List the tensors and metadata of a safetensors file or sharded index', load: async () => (await import('./commands/inspect.js')).inspect },
  vqgan: { summary: 'Stage A (Paella VQGAN): roundtrip a PNG through encode and decode', load: async () => (await import('./commands/vqgan.js')).vqgan },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length), 4);
  const lines = [
    'wuerstchen — Würstchen v2 text-to-image on WebGPU',
    '',
    'Usage: wuerstchen <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `wuerstchen <command> --help` for the options of one command.',
  ];
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name === undefined ? 1 : 0;
  }
  const entry = commands[name];
  if (!entry) {
    console.error(`wuerstchen: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`Usage: wuerstchen ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`wuerstchen ${name}: ${message}`);
    if (!(err instanceof CliError) && process.env.WUERSTCHEN_DEBUG) console.error(err);
    return 1;
  }
}
