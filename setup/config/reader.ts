/**
 * Typed reads from the parsed YAML tree. Every read names the full key path, so a bad value
 * produces "config: global.server_name: must be a string" rather than a stack trace.
 */

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type YamlMap = Record<string, unknown>;

function isMap(v: unknown): v is YamlMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A view of one mapping in the YAML tree at a key path. Missing sections read as empty. */
export class Section {
  constructor(
    private readonly node: YamlMap,
    readonly path: string,
  ) {}

  static root(doc: unknown): Section {
    if (doc === null || doc === undefined) return new Section({}, '');
    if (!isMap(doc)) throw new ConfigError('(root)', 'the config file must be a YAML mapping');
    return new Section(doc, '');
  }

  key(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  has(name: string): boolean {
    const v = this.node[name];
    return v !== undefined && v !== null;
  }

  section(name: string): Section {
    const v = this.node[name];
    if (v === undefined || v === null) return new Section({}, this.key(name));
    if (!isMap(v)) throw new ConfigError(this.key(name), 'must be a mapping');
    return new Section(v, this.key(name));
  }

  string(name: string, fallback: string): string {
    const v = this.node[name];
    if (v === undefined || v === null) return fallback;
    // YAML turns some unquoted scalars into numbers or booleans; a string field accepts them.
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new ConfigError(this.key(name), 'must be a string');
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.node[name];
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 1 || v === '1') return true;
    if (v === 'false' || v === 0 || v === '0') return false;
    throw new ConfigError(this.key(name), `must be true or false, not ${JSON.stringify(v)}`);
  }

  int(name: string, fallback: number, range?: { min?: number; max?: number }): number {
    const v = this.node[name];
    if (v === undefined || v === null) return fallback;
    const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
      throw new ConfigError(this.key(name), `must be an integer, not ${JSON.stringify(v)}`);
    }
    if (range?.min !== undefined && n < range.min) throw new ConfigError(this.key(name), `must be at least ${range.min}`);
    if (range?.max !== undefined && n > range.max) throw new ConfigError(this.key(name), `must be at most ${range.max}`);
    return n;
  }

  stringList(name: string, fallback: readonly string[] = []): string[] {
    const v = this.node[name];
    if (v === undefined || v === null) return [...fallback];
    if (typeof v === 'string') return [v];
    if (!Array.isArray(v)) throw new ConfigError(this.key(name), 'must be a list of strings');
    return v.map((item, i) => {
      if (typeof item === 'string') return item;
      if (typeof item === 'number') return String(item);
      throw new ConfigError(`${this.key(name)}[${i}]`, 'must be a string');
    });
  }

  list(name: string): Section[] {
    const v = this.node[name];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new ConfigError(this.key(name), 'must be a list');
    return v.map((item, i) => {
      if (!isMap(item)) throw new ConfigError(`${this.key(name)}[${i}]`, 'must be a mapping');
      return new Section(item, `${this.key(name)}[${i}]`);
    });
  }

  /** A Go duration ("168h0m0s", "5m", "500ms") or a number of milliseconds. */
  durationMs(name: string, fallbackMs: number): number {
    const v = this.node[name];
    if (v === undefined || v === null) return fallbackMs;
    // -1 means "no limit" for some keys (conn_max_lifetime), as in Dendrite.
    if (typeof v === 'number' && Number.isFinite(v) && v >= -1) return v;
    if (typeof v === 'string') {
      const ms = parseGoDuration(v);
      if (ms !== undefined) return ms;
    }
    throw new ConfigError(this.key(name), `must be a duration such as "5m" or "168h", not ${JSON.stringify(v)}`);
  }

  /** A byte size ("1gb", "512mb", "100kb") or a number of bytes. */
  bytes(name: string, fallback: number): number {
    const v = this.node[name];
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    if (typeof v === 'string') {
      const m = /^\s*(\d+(?:\.\d+)?)\s*(tb|gb|mb|kb|b)?\s*$/i.exec(v);
      if (m) {
        const unit = (m[2] ?? 'b').toLowerCase();
        const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 }[unit] ?? 1;
        return Math.round(Number(m[1]) * mult);
      }
    }
    throw new ConfigError(this.key(name), `must be a size such as "1gb" or a number of bytes, not ${JSON.stringify(v)}`);
  }
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses Go's time.Duration syntax into milliseconds; undefined when malformed. */
export function parseGoDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (durationUnits[m[2] ?? ''] ?? 0);
    matched = re.lastIndex;
  }
  return matched === s.length && matched > 0 ? total : undefined;
}
