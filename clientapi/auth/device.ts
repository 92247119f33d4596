/**
 * Resolves the access token of a request (Authorization: Bearer, or the deprecated
 * access_token query parameter) to a device through userapi.
 */
import type { Context } from 'hono';
import { missingToken, unknownToken } from '../../internal/httputil/index.js';
import type { ClientUserAPI, Device } from '../../userapi/api/index.js';

export function accessTokenOf(c: Context): string | undefined {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }
  return c.req.query('access_token') ?? undefined;
}

export async function requireDevice(c: Context, userAPI: ClientUserAPI): Promise<Device & { accessToken: string }> {
  const token = accessTokenOf(c);
  if (!token) throw missingToken();
  const { device, expired } = await userAPI.queryAccessToken({ accessToken: token });
  // An expired refreshable token is a soft logout: the client refreshes instead of logging in.
  if (expired) throw unknownToken('Access token has expired', true);
  if (!device) throw unknownToken();
  return { ...device, accessToken: token };
}
