import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineBusContract, silentLogger } from './bus.contract.js';
import { InProcessBus } from './inprocess/inprocess-bus.js';
import { subjectFor } from './streams.js';

let n = 0;

defineBusContract('in-process, in memory', async (opts) => {
  const prefix = `Mem${n++}`;
  const bus = () => new InProcessBus({ topicPrefix: prefix, inMemory: true, storagePath: '', logger: silentLogger, compactEveryMs: 100, ...opts });
  return { prefix, open: async () => bus(), cleanup: async () => {} };
}, { durable: false });

defineBusContract('in-process, durable (SQLite)', async (opts) => {
  const prefix = `Dur${n++}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'bus-'));
  return {
    prefix,
    open: async () => new InProcessBus({ topicPrefix: prefix, inMemory: false, storagePath: dir, logger: silentLogger, compactEveryMs: 100, ...opts }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}, { durable: true });

describe('in-process durable bus under kill -9', () => {
  // The child runs the compiled bus (npm test builds first).
  const compiled = path.resolve(import.meta.dirname, '../../dist/setup/jetstream/inprocess/inprocess-bus.js');

  it.skipIf(!existsSync(compiled))('loses no message whose publish was acknowledged', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bus-kill-'));
    const script = `
      import { InProcessBus } from ${JSON.stringify(compiled)};
      import pino from 'pino';
      const bus = new InProcessBus({ topicPrefix: 'K', inMemory: false, storagePath: ${JSON.stringify(dir)}, logger: pino({ level: 'silent' }) });
      let acked = 0;
      for (;;) {
        await bus.publish('KOutputRoomEvent', new TextEncoder().encode(String(acked)));
        acked++;
        process.stdout.write(acked + '\\n');
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: path.resolve(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] });
    let lastAcked = 0;
    child.stdout.on('data', (d: Buffer) => {
      const lines = d.toString().trim().split('\n');
      lastAcked = Number(lines[lines.length - 1]);
    });
    // Kill it mid-stream once some publishes are acknowledged (a loaded CI machine may be slow);
    // fail fast if it dies, and on a real stall.
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => {
        clearInterval(poll);
        reject(new Error(`child acknowledged only ${lastAcked} publishes in 30 s`));
      }, 30_000);
      const poll = setInterval(() => {
        if (lastAcked >= 100) {
          clearInterval(poll);
          clearTimeout(deadline);
          resolve();
        }
      }, 5);
      child.once('exit', (code) => {
        clearInterval(poll);
        clearTimeout(deadline);
        reject(new Error(`child exited (${code}) after ${lastAcked} publishes, before it was killed`));
      });
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const survivorAcked = lastAcked;

    const bus = new InProcessBus({ topicPrefix: 'K', inMemory: false, storagePath: dir, logger: silentLogger });
    const got: number[] = [];
    await bus.consume({ stream: 'KOutputRoomEvent', durable: 'after' }, async (m) => void got.push(Number(new TextDecoder().decode(m.data))));
    await new Promise((r) => setTimeout(r, 200));
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
    // Every publish the child saw acknowledged is there, in order, without gaps.
    expect(got.length).toBeGreaterThanOrEqual(survivorAcked);
    expect(got.slice(0, survivorAcked)).toEqual(Array.from({ length: survivorAcked }, (_, i) => i));
  }, 60_000);

  it('a durable consumer resumes where it acked after a clean restart', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bus-resume-'));
    const open = () => new InProcessBus({ topicPrefix: 'R', inMemory: false, storagePath: dir, logger: silentLogger });
    const a = open();
    const seen: string[] = [];
    await a.consume({ stream: 'ROutputRoomEvent', durable: 'd' }, async (m) => void seen.push(new TextDecoder().decode(m.data)));
    await a.publish(subjectFor('R', 'OutputRoomEvent'), new TextEncoder().encode('one'));
    await new Promise((r) => setTimeout(r, 50));
    await a.close();
    const b = open();
    await b.publish(subjectFor('R', 'OutputRoomEvent'), new TextEncoder().encode('two'));
    await b.consume({ stream: 'ROutputRoomEvent', durable: 'd' }, async (m) => void seen.push(new TextDecoder().decode(m.data)));
    await new Promise((r) => setTimeout(r, 50));
    await b.close();
    expect(seen).toEqual(['one', 'two']);
    rmSync(dir, { recursive: true, force: true });
  });
});
