import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { BusError, createBus } from './index.js';
import { NatsBus } from './nats/nats-bus.js';

const logger = pino({ level: 'silent' });

describe('createBus', () => {
  it('is in-process without NATS addresses, in memory or on disk', async () => {
    const mem = await createBus({ addresses: [], topicPrefix: 'I', inMemory: true, storagePath: '', logger });
    expect(mem.kind).toBe('inprocess');
    await mem.close();
    const dir = mkdtempSync(path.join(tmpdir(), 'bus-index-'));
    const disk = await createBus({ addresses: [], topicPrefix: 'I', inMemory: false, storagePath: path.join(dir, 'js'), logger });
    expect(disk.kind).toBe('inprocess');
    await disk.close();
    expect(existsSync(path.join(dir, 'js', 'jetstream.db'))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('is NATS with addresses, and names the address it cannot reach', async () => {
    const bus = await createBus({ addresses: ['nats://127.0.0.1:4222'], topicPrefix: `Idx${process.pid}`, inMemory: false, storagePath: '', logger });
    expect(bus).toBeInstanceOf(NatsBus);
    await (bus as NatsBus).deleteStreams();
    await bus.close();
    const err = await createBus({ addresses: ['127.0.0.1:1'], topicPrefix: 'X', inMemory: false, storagePath: '', logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusError);
    expect(err).toMatchObject({ code: 'connect', message: expect.stringContaining('127.0.0.1:1') });
  });
});
