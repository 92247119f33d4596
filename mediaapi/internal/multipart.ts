/**
 * The multipart/mixed bodies of the federation media endpoints (spec v1.11): exactly two parts,
 * a JSON object of metadata (today always `{}`), then either the media bytes with their
 * Content-Type and Content-Disposition, or a `Location` header pointing where to get them.
 *
 * Both directions stream: the answer we serve is two small buffers around the file's stream,
 * with an exact Content-Length; the answer we read is scanned for its boundaries chunk by
 * chunk, and the media part comes out as a stream of its own, so a large file is never held in
 * memory. Only the JSON part and the part headers are bounded and buffered.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Limits on the small pieces we buffer. */
const MAX_PREAMBLE = 4 * 1024;
const MAX_HEADERS = 16 * 1024;
const MAX_JSON = 64 * 1024;

export class MultipartError extends Error {
  override readonly name = 'MultipartError';
}

/** The boundary of a `multipart/mixed` Content-Type; undefined when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const [type, ...params] = contentType.split(';');
  if (type!.trim().toLowerCase() !== 'multipart/mixed') return undefined;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'boundary') continue;
    let v = p.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    // RFC 2046: 1-70 characters.
    return v.length >= 1 && v.length <= 70 ? v : undefined;
  }
  return undefined;
}

/** Reads a byte stream in pieces cut at delimiters. */
class DelimitedReader {
  private buf: Buffer;
  private readonly it: AsyncIterator<unknown>;

  constructor(body: Readable, initial: Buffer) {
    this.buf = initial;
    this.it = body[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    const n = await this.it.next();
    if (n.done) return false;
    const chunk = Buffer.isBuffer(n.value) ? n.value : Buffer.from(n.value as Uint8Array);
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  /** The bytes before the next `delim` (which is consumed); at most `max` of them. */
  async readUntil(delim: Buffer, max: number, what: string): Promise<Buffer> {
    let from = 0;
    for (;;) {
      const i = this.buf.indexOf(delim, from);
      if (i >= 0) {
        const out = this.buf.subarray(0, i);
        this.buf = this.buf.subarray(i + delim.length);
        return out;
      }
      if (this.buf.length > max + delim.length) throw new MultipartError(`${what} is longer than ${max} bytes`);
      from = Math.max(0, this.buf.length - delim.length + 1);
      if (!(await this.more())) throw new MultipartError(`the body ended inside ${what}`);
    }
  }

  /** Whether the unread bytes start with `prefix`, reading more if needed. */
  async startsWith(prefix: Buffer): Promise<boolean> {
    while (this.buf.length < prefix.length) if (!(await this.more())) return false;
    return this.buf.subarray(0, prefix.length).equals(prefix);
  }

  skip(n: number): void {
    this.buf = this.buf.subarray(n);
  }

  /**
   * The bytes before the next `delim`, as they arrive. Everything but the last
   * `delim.length - 1` bytes read so far can be passed on at once: the delimiter cannot start
   * earlier than that without having been found.
   */
  async *streamUntil(delim: Buffer, what: string): AsyncGenerator<Buffer> {
    for (;;) {
      const i = this.buf.indexOf(delim);
      if (i >= 0) {
        if (i > 0) yield this.buf.subarray(0, i);
        this.buf = this.buf.subarray(i + delim.length);
        return;
      }
      const keep = delim.length - 1;
      if (this.buf.length > keep) {
        const out = this.buf.subarray(0, this.buf.length - keep);
        this.buf = this.buf.subarray(this.buf.length - keep);
        yield out;
      }
      if (!(await this.more())) throw new MultipartError(`the body ended inside ${what}, before its closing boundary`);
    }
  }
}

/** Header lines of a part, names lower-cased. */
function parseHeaders(block: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of block.toString('latin1').split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError(`malformed part header line: ${JSON.stringify(line.slice(0, 80))}`);
    out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

export interface MultipartMedia {
  /** The first part: a JSON object. */
  metadata: Record<string, unknown>;
  /** The second part's headers (content-type, content-disposition, location...). */
  headers: Record<string, string>;
  /**
   * The second part's bytes, streaming; it fails when the body ends before the closing
   * boundary (a truncated answer must not be stored as complete).
   */
  content: Readable;
}

/**
 * Splits a federation media answer into its two parts. Resolves once the second part's
 * headers are read; its content streams from `body` as it is read.
 */
export async function readMultipartMedia(body: Readable, boundary: string): Promise<MultipartMedia> {
  // With a CRLF in front of the body, every delimiter (the first too) is CRLF "--" boundary.
  const delim = Buffer.from(`\r\n--${boundary}`);
  const r = new DelimitedReader(body, Buffer.from(CRLF));
  await r.readUntil(delim, MAX_PREAMBLE, 'the preamble');
  const nextPart = async (): Promise<Record<string, string>> => {
    // After a delimiter: "--" closes the body; otherwise optional whitespace, then CRLF.
    const rest = await r.readUntil(CRLF, 256, 'a boundary line');
    if (rest.subarray(0, 2).toString('latin1') === '--') throw new MultipartError('the body has fewer than two parts');
    if (!/^[ \t]*$/.test(rest.toString('latin1'))) throw new MultipartError('malformed boundary line');
    // A part with no headers starts straight with the blank line.
    if (await r.startsWith(CRLF)) {
      r.skip(CRLF.length);
      return {};
    }
    return parseHeaders(await r.readUntil(CRLFCRLF, MAX_HEADERS, 'part headers'));
  };
  await nextPart();
  const jsonBytes = await r.readUntil(delim, MAX_JSON, 'the JSON part');
  let metadata: unknown;
  try {
    metadata = JSON.parse(jsonBytes.toString('utf8'));
  } catch {
    throw new MultipartError('the first part is not JSON');
  }
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new MultipartError('the first part is not a JSON object');
  const headers = await nextPart();
  const content = Readable.from(r.streamUntil(delim, 'the media part'), { objectMode: false });
  // Reading stops at the closing delimiter; whatever follows (the epilogue) is dropped.
  content.once('close', () => body.destroy());
  return { metadata: metadata as Record<string, unknown>, headers, content };
}

/**
 * A multipart/mixed answer around a file stream: `{}` as the metadata part, then the file with
 * its Content-Type and Content-Disposition. The body's length is exact.
 */
export function multipartResponseBody(
  file: { stream: ReadableStream<Uint8Array>; sizeBytes: number },
  partHeaders: { contentType: string; contentDisposition: string },
): { contentType: string; contentLength: number; body: ReadableStream<Uint8Array> } {
  const boundary = randomBytes(16).toString('hex');
  const head = Buffer.from(
    `--${boundary}\r\nContent-Type: application/json\r\n\r\n{}\r\n` +
      `--${boundary}\r\nContent-Type: ${partHeaders.contentType}\r\nContent-Disposition: ${partHeaders.contentDisposition}\r\n\r\n`,
    'utf8',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8');
  const reader = file.stream.getReader();
  let stage: 'head' | 'file' | 'done' = 'head';
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        if (stage === 'head') {
          stage = 'file';
          ctrl.enqueue(head);
          return;
        }
        if (stage === 'file') {
          const { done, value } = await reader.read();
          if (!done) {
            ctrl.enqueue(value);
            return;
          }
          stage = 'done';
          ctrl.enqueue(tail);
          ctrl.close();
        }
      },
      async cancel(reason) {
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 1 },
  );
  return { contentType: `multipart/mixed; boundary=${boundary}`, contentLength: head.length + file.sizeBytes + tail.length, body };
}
