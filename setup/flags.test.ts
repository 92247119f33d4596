import { describe, expect, it } from 'vitest';
import { FlagError, parseFlags, type FlagSpec } from './flags.js';

const specs: FlagSpec[] = [
  { name: 'config', kind: 'string', usage: 'config file', default: 'dendrite.yaml' },
  { name: 'ci', kind: 'bool', usage: 'ci defaults', default: false },
  { name: 'keysize', kind: 'int', usage: 'rsa bits', default: 4096 },
];

describe('parseFlags (Go flag package semantics)', () => {
  it('accepts -flag value, --flag value and -flag=value', () => {
    expect(parseFlags(['-config', 'a.yaml'], specs).values.config).toBe('a.yaml');
    expect(parseFlags(['--config', 'b.yaml'], specs).values.config).toBe('b.yaml');
    expect(parseFlags(['--config=c.yaml'], specs).values.config).toBe('c.yaml');
  });
  it('reads booleans without a value and with =false', () => {
    expect(parseFlags(['-ci'], specs).values.ci).toBe(true);
    expect(parseFlags(['--ci=false'], specs).values.ci).toBe(false);
    expect(parseFlags([], specs).values.ci).toBe(false);
  });
  it('does not let a boolean swallow the next argument', () => {
    const { values } = parseFlags(['-ci', '-config', 'x'], specs);
    expect(values).toMatchObject({ ci: true, config: 'x' });
  });
  it('parses integers and rejects non-integers', () => {
    expect(parseFlags(['-keysize', '2048'], specs).values.keysize).toBe(2048);
    expect(() => parseFlags(['-keysize', 'big'], specs)).toThrow(/not an integer/);
  });
  it('keeps defaults and stops at the first non-flag', () => {
    const r = parseFlags(['-ci', 'extra', '-config', 'y'], specs);
    expect(r.values.config).toBe('dendrite.yaml');
    expect(r.rest).toEqual(['extra', '-config', 'y']);
  });
  it('rejects unknown flags and missing values', () => {
    expect(() => parseFlags(['-nope'], specs)).toThrow(FlagError);
    expect(() => parseFlags(['-config'], specs)).toThrow(/needs an argument/);
    expect(() => parseFlags(['-ci=maybe'], specs)).toThrow(/invalid boolean/);
  });
});
