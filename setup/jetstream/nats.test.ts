/** The bus contract on the real NATS JetStream at 127.0.0.1:4222 (tests need it; .ci/run starts it). */
import { defineBusContract, silentLogger } from './bus.contract.js';
import { NatsBus } from './nats/nats-bus.js';

const addresses = ['127.0.0.1:4222'];
let n = 0;

defineBusContract(
  'NATS JetStream',
  async (opts) => {
    const prefix = `T${process.pid}x${Date.now().toString(36)}x${n++}`;
    const open = () => NatsBus.connect({ addresses, topicPrefix: prefix, logger: silentLogger, pullExpiresMs: 1_000, ...opts });
    return {
      prefix,
      open,
      child: { addresses, topicPrefix: prefix, storagePath: '' },
      cleanup: async () => {
        const bus = await open();
        await bus.deleteStreams();
        await bus.close();
      },
    };
  },
  { durable: true },
);
