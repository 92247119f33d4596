/**
 * GET /capabilities (Client-Server API, "Capabilities negotiation"): what this server lets a
 * client do, built once from the config since none of it changes while the process runs.
 */
import type { Hono } from 'hono';
import { jsonResponse } from '../../internal/httputil/index.js';
import { roomVersionsCapability } from '../../internal/matrix/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

export function capabilitiesOf(cfg: Config): Record<string, unknown> {
  return {
    'm.change_password': { enabled: true },
    'm.room_versions': roomVersionsCapability(cfg.roomServer.defaultRoomVersion),
    'm.set_displayname': { enabled: true },
    'm.set_avatar_url': { enabled: true },
    // Third-party identifiers are bound through an identity server this server does not run.
    'm.3pid_changes': { enabled: false },
    'm.get_login_token': { enabled: cfg.clientApi.loginViaExistingSession.enabled },
  };
}

export function addCapabilitiesRoute(client: Hono, cfg: Config, userAPI: ClientUserAPI): void {
  const body = { capabilities: capabilitiesOf(cfg) };
  clientRoute(client, 'get', '/capabilities', async (c) => {
    await requireDevice(c, userAPI, { allowGuests: true });
    return jsonResponse(body);
  });
}
