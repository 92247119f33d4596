/**
 * Command-line flags the way Go's `flag` package reads them, because Sytest and Complement
 * drive our binaries with Dendrite's flags: `-name value`, `--name value`, `-name=value`;
 * boolean flags take no value (`-ci`) unless written `-ci=false`.
 */

export interface FlagSpec {
  name: string;
  kind: 'string' | 'bool' | 'int';
  usage: string;
  default?: string | boolean | number;
}

export type FlagValues = Record<string, string | boolean | number | undefined>;

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): { values: FlagValues; rest: string[] } {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values: FlagValues = {};
  for (const s of specs) values[s.name] = s.default;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      // Go stops at the first non-flag argument.
      rest.push(...argv.slice(i));
      break;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === 'h' || name === 'help') throw new FlagError('help requested');
    const spec = byName.get(name);
    if (!spec) throw new FlagError(`flag provided but not defined: -${name}`);
    let raw: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (spec.kind === 'bool') {
      if (raw === undefined) values[name] = true;
      else if (/^(1|t|true|TRUE|True)$/.test(raw)) values[name] = true;
      else if (/^(0|f|false|FALSE|False)$/.test(raw)) values[name] = false;
      else throw new FlagError(`invalid boolean value "${raw}" for -${name}`);
      continue;
    }
    if (raw === undefined) {
      raw = argv[++i];
      if (raw === undefined) throw new FlagError(`flag needs an argument: -${name}`);
    }
    if (spec.kind === 'int') {
      if (!/^-?\d+$/.test(raw)) throw new FlagError(`invalid value "${raw}" for flag -${name}: not an integer`);
      values[name] = Number(raw);
    } else {
      values[name] = raw;
    }
  }
  return { values, rest };
}

export function usageText(program: string, specs: readonly FlagSpec[]): string {
  const lines = [`Usage of ${program}:`];
  for (const s of specs) {
    const type = s.kind === 'bool' ? '' : ` ${s.kind}`;
    const def = s.default !== undefined && s.default !== '' && s.default !== false ? ` (default ${JSON.stringify(s.default)})` : '';
    lines.push(`  -${s.name}${type}`, `    \t${s.usage}${def}`);
  }
  return lines.join('\n');
}

export function stringFlag(values: FlagValues, name: string): string {
  const v = values[name];
  return typeof v === 'string' ? v : '';
}

/** Prints a flag problem (or the usage for -h) to stderr; returns the exit status, as Go does. */
export function reportFlagError(err: FlagError, program: string, specs: readonly FlagSpec[]): number {
  const help = err.message === 'help requested';
  process.stderr.write(`${help ? '' : `${err.message}\n`}${usageText(program, specs)}\n`);
  return help ? 0 : 2;
}
