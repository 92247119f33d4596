import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without type declarations
import { importsOf, violation } from './import-rules.mjs';

describe('import rules', () => {
  it.each([
    ['internal/matrix/event.ts', 'roomserver/api/index.ts', /internal\/ may not import roomserver/],
    ['internal/httputil/json.ts', 'setup/config/config.ts', /internal\/ may not import setup/],
    ['syncapi/consumers/x.ts', 'roomserver/storage/tables.ts', /only through roomserver\/api/],
    ['syncapi/consumers/x.ts', 'setup/server.ts', /setup\/ only/],
    ['setup/server.ts', 'roomserver/internal/api.ts', /only through roomserver\/roomserver.ts/],
    ['cmd/dendrite/main.ts', 'internal/version.ts', /cmd\/ may import only setup/],
  ])('%s -> %s is refused', (from, to, msg) => {
    expect(violation(from, to)).toMatch(msg);
  });

  it.each([
    ['syncapi/consumers/x.ts', 'roomserver/api/index.ts'],
    ['syncapi/consumers/x.ts', 'syncapi/storage/tables.ts'],
    ['syncapi/syncapi.ts', 'setup/config/config.ts'],
    ['setup/server.ts', 'roomserver/roomserver.ts'],
    ['setup/server.ts', 'internal/matrix/index.ts'],
    ['cmd/dendrite/main.ts', 'setup/cli/dendrite.ts'],
    ['bench/http/main.ts', 'roomserver/internal/api.ts'],
  ])('%s -> %s is allowed', (from, to) => {
    expect(violation(from, to)).toBeUndefined();
  });

  it('finds static, re-export, side-effect and dynamic imports', () => {
    const src = `import a from './a.js';\nimport type { B } from "../b.js";\nexport * from './c.js';\nimport './d.js';\nconst e = await import('./e.js');`;
    expect(importsOf(src)).toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js']);
  });
});
