/** One `wuerstchen <name>` sub-command. `run` returns the process exit code. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

/** A user-facing failure: printed as one line, no stack trace. */
export class CliError extends Error {
  override name = 'CliError';
}

/** Minimal `--flag value` / `--switch` parser; positional arguments are returned in order. */
export function parseArgs(
  argv: string[],
  spec: { values?: string[]; switches?: string[] },
): { positional: string[]; values: Map<string, string>; switches: Set<string> } {
  const values = new Map<string, string>();
  const switches = new Set<string>();
  const positional: string[] = [];
  const valueNames = new Set(spec.values ?? []);
  const switchNames = new Set(spec.switches ?? []);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (switchNames.has(name)) {
      switches.add(name);
    } else if (valueNames.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new CliError(`option --${name} needs a value`);
      values.set(name, value);
    } else {
      throw new CliError(`unknown option --${name}`);
    }
  }
  return { positional, values, switches };
}
