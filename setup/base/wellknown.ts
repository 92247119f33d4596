/**
 * /.well-known/matrix/server and /client from `global.well_known_*`. Unset: 404, which tells
 * clients and servers to use the server name as it is.
 */
import { jsonResponse, notFound, type PublicRouters } from '../../internal/httputil/index.js';
import type { Config } from '../config/config.js';

export function addWellKnownRoutes(routers: PublicRouters, cfg: Config): void {
  routers.wellKnown.get('/server', () => {
    if (!cfg.global.wellKnownServerName) throw notFound('No server delegation is configured');
    return jsonResponse({ 'm.server': cfg.global.wellKnownServerName });
  });
  routers.wellKnown.get('/client', () => {
    if (!cfg.global.wellKnownClientName) throw notFound('No client discovery is configured');
    return jsonResponse({ 'm.homeserver': { base_url: cfg.global.wellKnownClientName } });
  });
}
