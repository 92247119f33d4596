/** The device behind a request's access token, through userapi (see internal/httputil/auth.ts). */
import type { Context } from 'hono';
import { authenticate } from '../../internal/httputil/index.js';
import type { AuthenticatedDevice, ClientUserAPI } from '../../userapi/api/index.js';

export function requireDevice(c: Context, userAPI: ClientUserAPI, opts: { allowGuests?: boolean } = {}): Promise<AuthenticatedDevice & { accessToken: string }> {
  return authenticate(c, userAPI, opts);
}
