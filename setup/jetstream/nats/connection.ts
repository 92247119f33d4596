/** Connects to the NATS servers of `global.jetstream.addresses` and logs the connection's ups and downs. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { BusError, errorMessage } from '../bus.js';

/** Accepts `host:port` and `nats://host:port`, as Dendrite's config does. */
export function natsServers(addresses: readonly string[]): string[] {
  return addresses.map((a) => a.trim()).filter((a) => a !== '');
}

export async function connectNats(addresses: readonly string[], logger: Logger): Promise<NatsConnection> {
  const servers = natsServers(addresses);
  let nc: NatsConnection;
  try {
    // Reconnect forever: the bus outlives a NATS restart, with publishes failing meanwhile.
    nc = await connect({ servers, name: `dendrite-ts ${process.pid}`, timeout: 5_000, maxReconnectAttempts: -1 });
  } catch (err) {
    throw new BusError('connect', `cannot connect to NATS at ${servers.join(', ')}: ${errorMessage(err)}`, { cause: err });
  }
  void logStatus(nc, logger);
  return nc;
}

async function logStatus(nc: NatsConnection, logger: Logger): Promise<void> {
  for await (const s of nc.status()) {
    switch (s.type) {
      case 'disconnect':
        logger.warn({ server: s.server }, 'NATS connection lost; reconnecting');
        break;
      case 'reconnect':
        logger.info({ server: s.server }, 'NATS connection back');
        break;
      case 'error':
        logger.error({ err: s.error }, 'NATS error');
        break;
      case 'ldm':
        logger.warn({ server: s.server }, 'NATS server entering lame duck mode');
        break;
      case 'slowConsumer':
        logger.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'NATS subscription falling behind');
        break;
      default:
        break;
    }
  }
}
