/** roomserver: the room DAG: event input, auth, state, queries. */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { runMigrations, type OpenedDatabase } from '../internal/sqlutil/index.js';
import type { Config } from '../setup/config/config.js';
import { subjectFor, type Bus } from '../setup/jetstream/index.js';
import type { InputRoomEventsRequest, OutputRoomEvent, RoomserverInternalAPI } from './api/index.js';
import { RoomserverInternalAPIImpl } from './internal/api.js';
import { EventLoader } from './internal/eventloader.js';
import { Inputer } from './internal/input/inputer.js';
import { RoomCreator } from './internal/perform/createroom.js';
import type { PeekFederationAPI } from './internal/perform/peek.js';
import type { BackfillFederationAPI } from './internal/perform/backfill.js';
import type { SigningIdentity } from '../internal/signingidentity.js';
import { DirectoryStore } from './storage/directory.js';
import { EventStore } from './storage/eventstore.js';
import { roomserverMigrations } from './storage/migrations.js';
import { StateSnapshotStore } from './storage/statesnapshots.js';
import type { RoomserverDatabase } from './storage/tables.js';

/**
 * `federation`: federationapi's API once it is built (after the roomserver), for peeks into
 * rooms of other servers and backfill; absent or undefined without it. `onShutdown` registers
 * what to do at a clean stop.
 */
export async function newInternalAPI(
  cfg: Config,
  db: OpenedDatabase<unknown>,
  bus: Bus,
  log: Logger,
  identity: SigningIdentity,
  federation: () => (PeekFederationAPI & BackfillFederationAPI) | undefined = () => undefined,
  onShutdown?: (name: string, run: () => Promise<void> | void) => void,
): Promise<RoomserverInternalAPI> {
  await runMigrations(db.db, db.dialect, 'roomserver', roomserverMigrations);
  const kysely = db.db as unknown as Kysely<RoomserverDatabase>;
  const events = new EventStore(kysely);
  const snapshots = new StateSnapshotStore(kysely);
  const loader = new EventLoader(events);
  const prefix = cfg.global.jetstream.topicPrefix;
  const encoder = new TextEncoder();
  const publish = async (roomId: string, msgId: string, output: OutputRoomEvent): Promise<void> => {
    await bus.publish(subjectFor(prefix, 'OutputRoomEvent', roomId), encoder.encode(JSON.stringify(output)), { msgId });
  };
  const inputer = new Inputer({
    serverName: cfg.global.serverName,
    events,
    snapshots,
    loader,
    log: log.child({ component: 'roomserver' }),
    publish,
  });
  // Outputs a crash left unpublished go out before anything new.
  await inputer.recover();
  // Published outputs still in the outbox are cleared at a clean stop (else they go out again, deduplicated, at the next start).
  onShutdown?.('roomserver outbox', () => inputer.flushOutbox());
  // Asynchronous submitters (backfill, federation catch-up) publish InputRoomEvent, one subject
  // per room: the bus keeps each room in order and the inputer queues by room as well.
  const decoder = new TextDecoder();
  // Stopped with the bus at shutdown.
  await bus.consume(
    { stream: `${prefix}InputRoomEvent`, durable: 'RoomserverInputConsumer', orderedBySubject: true, concurrency: 16 },
    async (msg) => {
      let req: InputRoomEventsRequest;
      try {
        req = JSON.parse(decoder.decode(msg.data)) as InputRoomEventsRequest;
        if (!Array.isArray(req.events)) throw new Error('events must be a list');
      } catch (err) {
        // A malformed message would fail the same way forever: log it and let it go.
        log.warn({ err, subject: msg.subject }, 'roomserver: malformed InputRoomEvent dropped');
        return;
      }
      const results = await inputer.input(req.events);
      for (const r of results) if (r.status === 'error') log.warn({ event_id: r.event_id, error: r.error }, 'roomserver: asynchronous input not processed');
    },
  );
  return new RoomserverInternalAPIImpl(
    cfg.global.serverName,
    inputer,
    events,
    snapshots,
    loader,
    new DirectoryStore(kysely),
    new RoomCreator(identity, inputer),
    identity,
    {
      db: kysely,
      publish,
      log: log.child({ component: 'roomserver' }),
    },
    { federatedPeeks: cfg.mscs.mscs.includes('msc2444'), federation, publish, log: log.child({ component: 'roomserver' }) },
    { federation, log: log.child({ component: 'roomserver' }) },
  );
}
