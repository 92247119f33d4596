/**
 * createBus: NATS JetStream when `global.jetstream.addresses` names servers, else the
 * embedded in-process bus (in memory with `in_memory: true`, else durable under
 * `storage_path`).
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
  /** Tests shorten max ages. */
  maxAgeOverrides?: Partial<Record<StreamName, number>>;
}

export async function createBus(cfg: BusConfig): Promise<Bus> {
  const overrides = cfg.maxAgeOverrides ? { maxAgeOverrides: cfg.maxAgeOverrides } : {};
  if (cfg.addresses.length > 0) {
    // Loaded only when used: a home install never needs the NATS client.
    const { NatsBus } = await import('./nats/nats-bus.js');
    const bus = await NatsBus.connect({ addresses: cfg.addresses, topicPrefix: cfg.topicPrefix, logger: cfg.logger, ...overrides });
    cfg.logger.info({ addresses: cfg.addresses, topicPrefix: cfg.topicPrefix }, 'bus: NATS JetStream');
    return bus;
  }
  const bus = new InProcessBus({ topicPrefix: cfg.topicPrefix, inMemory: cfg.inMemory, storagePath: cfg.storagePath, logger: cfg.logger, ...overrides });
  cfg.logger.info(cfg.inMemory ? { topicPrefix: cfg.topicPrefix } : { topicPrefix: cfg.topicPrefix, storagePath: cfg.storagePath }, `bus: in-process, ${cfg.inMemory ? 'in memory' : 'on disk'}`);
  return bus;
}
