/**
 * `npm run bench [name ...]`: runs the benchmarks and prints their figures.
 * Names: http, protocol, userapi, roomserver, syncapi, federation, media, push, search, relations, clientapi (default: all).
 */
import { httpBenches } from './http/main.js';
import { busBenches } from './http/bus.js';
import { protocolBenches } from './protocol/main.js';
import { stateResBenches } from './protocol/stateres.js';
import { userapiBenches } from './userapi/main.js';
import { stateBenches } from './roomserver/state.js';
import { inputBenches } from './roomserver/input.js';
import { syncapiBenches } from './syncapi/main.js';
import { federationBenches } from './federation/main.js';
import { mediaBenches } from './media/main.js';
import { pushBenches } from './push/main.js';
import { searchBenches } from './search/main.js';
import { relationsBenches } from './relations/main.js';
import { clientapiBenches } from './clientapi/main.js';

const suites: Record<string, Array<[string, () => Promise<Record<string, number>>]>> = {
  http: [
    ['HTTP: GET /_matrix/client/versions (autocannon, 50 connections, 5 s)', () => httpBenches()],
    ['bus: publish-to-consume', () => busBenches()],
  ],
  protocol: [
    ['protocol: JSON, signing, validation', () => protocolBenches()],
    ['protocol: state resolution', () => stateResBenches()],
  ],
  userapi: [['userapi: logins, access token checks and keys over HTTP', () => userapiBenches()]],
  roomserver: [
    ['roomserver: state snapshots on disk and in time', () => stateBenches()],
    ['roomserver: input pipeline events/s', () => inputBenches()],
  ],
  syncapi: [['syncapi: /sync latency and throughput over HTTP', () => syncapiBenches()]],
  federation: [['federation: inbound /send and joining big rooms', () => federationBenches()]],
  media: [['media: upload, download and thumbnails over HTTP', () => mediaBenches()]],
  push: [['push: rule evaluations and the cost per event in a 1,000-member room', () => pushBenches()]],
  search: [['search: full-text index (FTS5, tsvector): indexing events/s and query latency over 100,000 messages', () => searchBenches()]],
  relations: [['relations: /relations over 1,000 children and bundled aggregations on /messages pages of 50 (SQLite, PostgreSQL)', () => relationsBenches()]],
  clientapi: [['clientapi: PUT /send messages/s and latency, 10 users into one room and into 10 rooms (SQLite, PostgreSQL)', () => clientapiBenches()]],
};

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(suites)) {
  const suite = suites[name];
  if (!suite) {
    console.error(`unknown benchmark "${name}" (known: ${Object.keys(suites).join(', ')})`);
    process.exit(2);
  }
  for (const [title, run] of suite) {
    console.log(`# ${title}`);
    for (const [k, v] of Object.entries(await run())) console.log(`${k}: ${v}`);
    console.log();
  }
}
