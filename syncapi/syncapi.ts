/** syncapi: /sync and the read side of rooms. */
import type { Config } from '../setup/config/config.js';
import type { SyncInternalAPI } from './api/index.js';
import { SyncInternalAPIImpl } from './internal/api.js';

export function newInternalAPI(cfg: Config): SyncInternalAPI {
  return new SyncInternalAPIImpl(cfg.global.serverName);
}
