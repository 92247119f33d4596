/** roomserver: the room DAG: event input, auth, state, queries. */
import type { Config } from '../setup/config/config.js';
import type { RoomserverInternalAPI } from './api/index.js';
import { RoomserverInternalAPIImpl } from './internal/api.js';

export function newInternalAPI(cfg: Config): RoomserverInternalAPI {
  return new RoomserverInternalAPIImpl(cfg.global.serverName);
}
