/**
 * JSON in and out. Responses carry `Content-Type: application/json` exactly: Sytest (and some
 * clients) compare the whole header. Request bodies are read once, bounded, and must be
 * JSON objects.
 */
import type { Context } from 'hono';
import { badJson, notJson, tooLarge, type JsonBody } from './matrixerror.js';

export const JSON_CONTENT_TYPE = 'application/json';
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': JSON_CONTENT_TYPE, ...headers },
  });
}

/** Reads the body as a JSON object. Empty bodies read as `{}` when `allowEmpty`. */
export async function readJsonObject(c: Context, opts: { maxBytes: number; allowEmpty?: boolean }): Promise<JsonBody> {
  const buf = await readBody(c, opts.maxBytes);
  if (buf.length === 0) {
    if (opts.allowEmpty) return {};
    throw notJson('Request body is empty; a JSON object is required.');
  }
  let parsed: unknown;
  try {
    // Fatal decoding: invalid UTF-8 is not JSON (RFC 8259), rather than text with U+FFFD in it.
    parsed = JSON.parse(utf8.decode(buf));
  } catch {
    throw notJson('Content not JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badJson('The request body must be a JSON object.');
  }
  return parsed as JsonBody;
}

/** The raw body, refused with 413 M_TOO_LARGE past `maxBytes` (checked while streaming). */
export async function readBody(c: Context, maxBytes: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const body = c.req.raw.body;
  if (!body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}
