/**
 * Creates or updates the streams at start-up. JetStream cannot change a stream's retention or
 * storage in place; a stream made differently (by an older version) is deleted and made
 * again, as Dendrite does, losing what it held.
 */
import { RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { StreamDefinition } from '../streams.js';

/** JetStream's default duplicate window; it must fit within the max age. */
const DUPLICATE_WINDOW_MS = 120_000;

export function streamConfig(d: StreamDefinition): Partial<StreamConfig> & { name: string } {
  return {
    name: d.name,
    subjects: d.subjects,
    retention: RetentionPolicy.Interest,
    storage: d.storage === 'memory' ? StorageType.Memory : StorageType.File,
    max_age: nanos(d.maxAgeMs),
    duplicate_window: nanos(d.maxAgeMs > 0 ? Math.min(DUPLICATE_WINDOW_MS, d.maxAgeMs) : DUPLICATE_WINDOW_MS),
  };
}

export async function ensureStreams(jsm: JetStreamManager, defs: readonly StreamDefinition[], logger: Logger): Promise<void> {
  for (const d of defs) {
    const want = streamConfig(d);
    const have = await jsm.streams.info(d.name).catch((err: unknown) => {
      if (/not found/i.test((err as Error).message)) return undefined;
      throw err;
    });
    if (have && (have.config.retention !== want.retention || have.config.storage !== want.storage)) {
      logger.warn(
        { stream: d.name, retention: have.config.retention, storage: have.config.storage },
        'stream was made with another retention or storage; deleting and making it again',
      );
      await jsm.streams.delete(d.name);
      await jsm.streams.add(want);
    } else if (have) {
      await jsm.streams.update(d.name, want);
    } else {
      await jsm.streams.add(want);
    }
  }
}
