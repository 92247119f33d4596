/**
 * createBus: NATS JetStream when `global.jetstream.addresses` names servers, else the
 * embedded in-process bus (in memory, or durable under `storage_path`).
 */
import type { Logger } from 'pino';
import type { Bus } from './bus.js';
import { InProcessBus } from './inprocess/inprocess-bus.js';
import type { StreamName } from './streams.js';

export * from './bus.js';
export * from './streams.js';

export interface BusConfig {
  addresses: string[];
  topicPrefix: string;
  inMemory: boolean;
  storagePath: string;
  logger: Logger;
  maxAgeOverrides?: Partial<Record<StreamName, number>>;
}

export async function createBus(cfg: BusConfig): Promise<Bus> {
  if (cfg.addresses.length > 0) {
    // Loaded only when used: a home install never needs the NATS client (about 10 MB).
    const { NatsBus } = await import('./nats/nats-bus.js');
    return NatsBus.connect({ addresses: cfg.addresses, topicPrefix: cfg.topicPrefix, logger: cfg.logger, ...(cfg.maxAgeOverrides ? { maxAgeOverrides: cfg.maxAgeOverrides } : {}) });
  }
  return new InProcessBus({
    topicPrefix: cfg.topicPrefix,
    inMemory: cfg.inMemory,
    storagePath: cfg.storagePath,
    logger: cfg.logger,
    ...(cfg.maxAgeOverrides ? { maxAgeOverrides: cfg.maxAgeOverrides } : {}),
  });
}
