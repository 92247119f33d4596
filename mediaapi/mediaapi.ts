/** mediaapi: upload, download and thumbnails. */
import type { Config } from '../setup/config/config.js';
import type { MediaInternalAPI } from './api/index.js';
import { MediaInternalAPIImpl } from './internal/api.js';

export function newInternalAPI(cfg: Config): MediaInternalAPI {
  return new MediaInternalAPIImpl(cfg.global.serverName);
}
