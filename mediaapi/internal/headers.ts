/**
 * Response headers for media: what may be shown inline, Content-Disposition with the file
 * name encoded per RFC 6266 / RFC 5987, and the caching and sandboxing headers Synapse sends.
 */

/**
 * Content types a browser may render inline (spec v1.12, "Serving inline content"): ones that
 * cannot run script in the server's origin. Everything else is sent as an attachment.
 */
export const INLINE_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

/** The media type without parameters, lower-cased: "Text/Plain; charset=x" → "text/plain". */
export function baseContentType(contentType: string): string {
  return contentType.split(';', 1)[0]!.trim().toLowerCase();
}

export function isInlineSafe(contentType: string): boolean {
  return INLINE_CONTENT_TYPES.has(baseContentType(contentType));
}

// RFC 7230 tchar: a file name made only of these can go unquoted.
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 5987 attr-char: what may stay unescaped in ext-value.
const ATTR_CHAR_RE = /[A-Za-z0-9!#$&+\-.^_`|~]/;

/** RFC 5987 ext-value of a UTF-8 string: utf-8''%E2%98%95.txt */
export function rfc5987Encode(value: string): string {
  let out = "utf-8''";
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR_RE.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * `inline` or `attachment` by content type, with the file name when there is one: as a token
 * when it is one (`filename=cat.png`), otherwise in the RFC 5987 form (`filename*=utf-8''…`),
 * as Synapse writes it.
 */
export function contentDisposition(contentType: string, fileName: string | null | undefined): string {
  const kind = isInlineSafe(contentType) ? 'inline' : 'attachment';
  if (!fileName) return kind;
  return TOKEN_RE.test(fileName) ? `${kind}; filename=${fileName}` : `${kind}; filename*=${rfc5987Encode(fileName)}`;
}

/** The Content-Type to serve: text types get an explicit charset so browsers do not guess. */
export function servedContentType(contentType: string): string {
  if (baseContentType(contentType).startsWith('text/') && !/;\s*charset=/i.test(contentType)) return `${contentType}; charset=UTF-8`;
  return contentType;
}

/**
 * Headers on every media response (Synapse's set): cache for a day (content never changes
 * under an ID), sandbox whatever a browser renders so a served file can run nothing in our
 * origin, allow embedding from other origins, keep it out of search engines.
 */
export const MEDIA_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'public, max-age=86400, s-maxage=86400',
  'Content-Security-Policy':
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
  'X-Content-Security-Policy': 'sandbox;',
  'Cross-Origin-Resource-Policy': 'cross-origin',
  'X-Content-Type-Options': 'nosniff',
  'X-Robots-Tag': 'noindex, nofollow, noarchive, noimageindex',
};

// type "/" subtype, each an RFC 7230 token, then optional parameters of printable ASCII.
const CONTENT_TYPE_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*;[\x20-\x7e]*)?$/;

/** The Content-Type an upload is stored with: what the client sent if well formed, else octet-stream. */
export function uploadContentType(header: string | undefined): string {
  const v = header?.trim();
  return v && v.length <= 255 && CONTENT_TYPE_RE.test(v) ? v : 'application/octet-stream';
}

/**
 * The file name a Content-Disposition header gives (another server's answer): `filename*`
 * (RFC 5987, UTF-8) before `filename` (token or quoted string). Null when there is none, or
 * when it is not a name we would accept in an upload (over 255 bytes, control characters).
 */
export function dispositionFileName(header: string | undefined): string | null {
  if (!header) return null;
  let name: string | undefined;
  const ext = /(?:^|;)\s*filename\*\s*=\s*([^';]*)'[^']*'([^;]*)/i.exec(header);
  if (ext && /^utf-8$/i.test(ext[1]!.trim())) {
    try {
      name = decodeURIComponent(ext[2]!.trim());
    } catch {
      name = undefined;
    }
  }
  if (name === undefined) {
    const plain = /(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(header);
    if (plain) name = plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2];
  }
  if (!name || Buffer.byteLength(name, 'utf8') > 255 || /[\u0000-\u001f\u007f]/.test(name)) return null;
  return name;
}
