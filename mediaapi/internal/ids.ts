/** Media IDs and mxc:// URIs. */
import { randomBytes } from 'node:crypto';
import { isValidServerName } from '../../internal/matrix/index.js';
import { MatrixError } from '../../internal/httputil/index.js';

// The spec's media ID grammar: [A-Za-z0-9_-]+. Bounded so that IDs stay reasonable keys.
const MEDIA_ID_RE = /^[A-Za-z0-9_-]{1,255}$/;

export const isValidMediaId = (id: string): boolean => MEDIA_ID_RE.test(id);

/** 24 characters of base64url: 144 random bits, unguessable and valid in an mxc:// URI. */
export function newMediaId(): string {
  return randomBytes(18).toString('base64url');
}

export const mxcUri = (serverName: string, mediaId: string): string => `mxc://${serverName}/${mediaId}`;

/** Checks the server name and media ID from a path: 400 M_INVALID_PARAM when malformed. */
export function checkMediaPath(serverName: string, mediaId: string): void {
  if (!isValidServerName(serverName)) throw new MatrixError(400, 'M_INVALID_PARAM', `Malformed server name: ${serverName}`);
  if (!isValidMediaId(mediaId)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Malformed media ID: it must be 1-255 characters of A-Z, a-z, 0-9, _ and -');
}
