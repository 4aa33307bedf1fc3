import { openSafetensors, ShardedSafetensors, type TensorReader } from '../../io/safetensors.js';
import { CliError, parseArgs, type Command } from '../command.js';

function listing(path: string, reader: TensorReader): string[] {
  const tensors = [...reader.tensors.values()];
  const sharded = reader instanceof ShardedSafetensors;
  const rows = tensors.map((t) => {
    const row = [t.name, t.dtype, `[${t.shape.join(', ')}]`];
    if (sharded) row.push(t.file.slice(Math.max(t.file.lastIndexOf('/'), t.file.lastIndexOf('\\')) + 1));
    return row;
  });
  const header = sharded ? ['name', 'dtype', 'shape', 'shard'] : ['name', 'dtype', 'shape'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (row: string[]) => `  ${row.map((cell, column) => cell.padEnd(widths[column])).join('  ')}`.trimEnd();
  const elements = tensors.reduce((sum, t) => sum + t.shape.reduce((n, d) => n * d, 1), 0);
  const metadata = Object.entries(reader.metadata);
  return [
    path,
    `${tensors.length} tensors, ${elements} elements`,
    line(header),
    ...rows.map(line),
    metadata.length === 0 ? 'metadata: (none)' : 'metadata:',
    ...metadata.map(([key, value]) => `  ${key}: ${value}`),
  ];
}

export const inspect: Command = {
  name: 'inspect',
  summary: 'List the tensors (name, dtype, shape) and metadata of a safetensors file or sharded index',
  usage: 'inspect <file.safetensors | model.safetensors.index.json>',
  async run(argv) {
    const { positional } = parseArgs(argv, {});
    if (positional.length !== 1) {
      throw new CliError(`expected one file, got ${positional.length}; usage: wuerstchen ${inspect.usage}`);
    }
    const [path] = positional;
    const reader = await openSafetensors(path);
    try {
      console.log(listing(path, reader).join('\n'));
    } finally {
      await reader.close();
    }
    return 0;
  },
};
