/**
 * Runs `bus-child.ts` in a separate Node process straight from the TypeScript sources
 * (Node's type stripping, with `.js` imports mapped to `.ts`), so that the crash tests need
 * no build and always test the current code.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { ChildJob } from './bus-child.js';

const resolveTsHook = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
registerHooks({
  resolve(specifier, context, next) {
    try {
      return next(specifier, context);
    } catch (err) {
      if (specifier.startsWith('.') && specifier.endsWith('.js')) return next(specifier.slice(0, -3) + '.ts', context);
      throw err;
    }
  },
});`)}`;

export interface BusChild {
  /** Lines printed so far. */
  lines: string[];
  /** Resolves when a printed line satisfies `cond`. */
  waitFor(cond: (line: string, all: readonly string[]) => boolean, timeoutMs?: number): Promise<void>;
  kill(): Promise<void>;
}

export function startBusChild(job: ChildJob): BusChild {
  const script = path.join(import.meta.dirname, 'bus-child.ts');
  const child: ChildProcessByStdio<Writable, Readable, null> = spawn(
    process.execPath,
    ['--experimental-transform-types', '--no-warnings', '--import', resolveTsHook, script, JSON.stringify(job)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  const watchers = new Set<() => void>();
  let partial = '';
  let exited = false;
  child.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of watchers) w();
  });
  const exit = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true;
      for (const w of watchers) w();
      r();
    }),
  );
  return {
    lines,
    waitFor: (cond, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (lines.some((l) => cond(l, lines))) done(resolve);
          else if (exited) done(() => reject(new Error(`bus child exited before the awaited line; it printed:\n${lines.slice(-5).join('\n')}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`bus child: awaited line not seen in ${timeoutMs} ms`))), timeoutMs);
        const done = (then: () => void): void => {
          clearTimeout(timer);
          watchers.delete(check);
          then();
        };
        watchers.add(check);
        check();
      }),
    kill: async () => {
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
  };
}
