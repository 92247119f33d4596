/** The bus contract on the real NATS JetStream at 127.0.0.1:4222 (see README: tests need it). */
import { defineBusContract, silentLogger } from './bus.contract.js';
import { NatsBus } from './nats/nats-bus.js';

let n = 0;

defineBusContract('NATS JetStream', async (opts) => {
  const prefix = `T${process.pid}x${Date.now().toString(36)}x${n++}`;
  const open = () => NatsBus.connect({ addresses: ['127.0.0.1:4222'], topicPrefix: prefix, logger: silentLogger, ...opts });
  return {
    prefix,
    open,
    cleanup: async () => {
      const bus = await open();
      await bus.deleteStreams();
      await bus.close();
    },
  };
}, { durable: true });
