/** userapi: accounts, devices, profiles, account data, push and the key server. */
import type { Config } from '../setup/config/config.js';
import type { UserInternalAPI } from './api/index.js';
import { UserInternalAPIImpl } from './internal/api.js';

export function newInternalAPI(cfg: Config): UserInternalAPI {
  return new UserInternalAPIImpl(cfg.global.serverName);
}
