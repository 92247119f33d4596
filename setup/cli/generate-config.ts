/** `generate-config`: prints a complete dendrite.yaml on stdout (and nothing else there). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { parseConfigYaml } from '../config/config.js';
import { generateConfigDocument, generateConfigYaml } from '../config/generate.js';
import { FlagError, parseFlags, reportFlagError, stringFlag, type FlagSpec } from '../flags.js';

const flags: FlagSpec[] = [
  { name: 'ci', kind: 'bool', usage: 'Populate the configuration with sane defaults for use in CI', default: false },
  { name: 'server', kind: 'string', usage: 'The domain name of the server if not "localhost"' },
  { name: 'db', kind: 'string', usage: 'The DB URI to use for all components (PostgreSQL only)' },
  { name: 'dir', kind: 'string', usage: 'The folder to use for paths (like SQLite databases, media storage)' },
  { name: 'normalise', kind: 'string', usage: 'Normalise an existing configuration file by adding all missing defaults' },
];

export function runGenerateConfig(argv: readonly string[]): number {
  try {
    const { values } = parseFlags(argv, flags);
    const normalise = stringFlag(values, 'normalise');
    if (normalise) {
      return normaliseConfig(normalise);
    }
    const server = stringFlag(values, 'server');
    const dir = stringFlag(values, 'dir');
    const db = stringFlag(values, 'db');
    process.stdout.write(
      generateConfigYaml({ ci: values.ci === true, ...(server ? { serverName: server } : {}), ...(dir ? { dir } : {}), ...(db ? { db } : {}) }),
    );
    return 0;
  } catch (err) {
    if (err instanceof FlagError) return reportFlagError(err, 'generate-config', flags);
    process.stderr.write(`generate-config: ${(err as Error).message}\n`);
    return 1;
  }
}

/** Adds every missing key (with its default) to an existing file, keeping what it sets. */
function normaliseConfig(file: string): number {
  const text = readFileSync(file, 'utf8');
  parseConfigYaml(text, path.dirname(path.resolve(file))); // validate first
  const merged = deepMerge(generateConfigDocument({ ci: false }), (parseYaml(text) ?? {}) as Record<string, unknown>);
  process.stdout.write(stringify(merged, { version: '1.1', lineWidth: 0 }));
  return 0;
}

function deepMerge(defaults: Record<string, unknown>, given: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(given)) {
    const d = out[k];
    const isMap = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    out[k] = isMap(d) && isMap(v) ? deepMerge(d, v) : v;
  }
  return out;
}
