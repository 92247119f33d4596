import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { multipartBoundary, multipartResponseBody, MultipartError, readMultipartMedia } from './multipart.js';

const collect = async (r: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};
const webBytes = async (s: ReadableStream<Uint8Array>): Promise<Buffer> => Buffer.from(await new Response(s).arrayBuffer());
/** A body cut into pieces of `size` bytes, so delimiters straddle chunk edges. */
const chunked = (b: Buffer, size: number): Readable => {
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) parts.push(b.subarray(i, i + size));
  return Readable.from(parts);
};
const streamOf = (b: Buffer): ReadableStream<Uint8Array> =>
  new ReadableStream({
    start(ctrl) {
      ctrl.enqueue(b);
      ctrl.close();
    },
  });

describe('multipartBoundary', () => {
  it('reads plain and quoted boundaries of multipart/mixed only', () => {
    expect(multipartBoundary('multipart/mixed; boundary=abc123')).toBe('abc123');
    expect(multipartBoundary('Multipart/Mixed;charset=x; BOUNDARY="a b:c"')).toBe('a b:c');
    expect(multipartBoundary('multipart/form-data; boundary=x')).toBeUndefined();
    expect(multipartBoundary('multipart/mixed')).toBeUndefined();
    expect(multipartBoundary(`multipart/mixed; boundary=${'x'.repeat(71)}`)).toBeUndefined();
    expect(multipartBoundary(undefined)).toBeUndefined();
  });
});

describe('multipart media bodies', () => {
  it('reads back what we serve, whatever the chunking, with an exact length', async () => {
    const file = randomBytes(70_000);
    // The boundary's own bytes inside the content must not end it early.
    file.write('\r\n--', 1000, 'latin1');
    for (const size of [1, 7, 64, 4096, 1 << 20]) {
      const served = multipartResponseBody({ stream: streamOf(file), sizeBytes: file.length }, { contentType: 'image/png', contentDisposition: 'inline; filename=a.png' });
      const body = await webBytes(served.body);
      expect(body.length).toBe(served.contentLength);
      const boundary = multipartBoundary(served.contentType)!;
      const got = await readMultipartMedia(chunked(body, size), boundary);
      expect(got.metadata).toEqual({});
      expect(got.headers['content-type']).toBe('image/png');
      expect(got.headers['content-disposition']).toBe('inline; filename=a.png');
      expect((await collect(got.content)).equals(file)).toBe(true);
    }
  });

  it('takes a preamble, parts without headers, a Location part, and ignores the epilogue', async () => {
    const body = Buffer.from('preamble text\r\n--B\r\n\r\n{"a":1}\r\n--B  \r\nLocation: https://cdn.example/x\r\n\r\n\r\n--B--\r\nepilogue');
    const got = await readMultipartMedia(chunked(body, 3), 'B');
    expect(got.metadata).toEqual({ a: 1 });
    expect(got.headers).toEqual({ location: 'https://cdn.example/x' });
    expect((await collect(got.content)).length).toBe(0);
  });

  it('fails a body that ends before the media part is closed (truncated transfer)', async () => {
    const body = Buffer.from('--B\r\nContent-Type: application/json\r\n\r\n{}\r\n--B\r\nContent-Type: text/plain\r\n\r\nhalf of the fi');
    const got = await readMultipartMedia(chunked(body, 5), 'B');
    await expect(collect(got.content)).rejects.toThrow(MultipartError);
  });

  it('refuses malformed bodies with MultipartError', async () => {
    const cases: Array<[string, string]> = [
      ['no boundary at all', 'hello'],
      ['one part only', '--B\r\n\r\n{}\r\n--B--\r\n'],
      ['a JSON part that is not JSON', '--B\r\n\r\nnot json\r\n--B\r\n\r\nx\r\n--B--'],
      ['a JSON part that is an array', '--B\r\n\r\n[]\r\n--B\r\n\r\nx\r\n--B--'],
      ['a broken header line', '--B\r\n\r\n{}\r\n--B\r\nno colon here\r\n\r\nx\r\n--B--'],
    ];
    for (const [what, text] of cases) {
      await expect(readMultipartMedia(chunked(Buffer.from(text), 4), 'B'), what).rejects.toThrow(MultipartError);
    }
    const hugeJson = `--B\r\n\r\n{"a":"${'x'.repeat(70_000)}"}\r\n--B\r\n\r\nx\r\n--B--`;
    await expect(readMultipartMedia(chunked(Buffer.from(hugeJson), 1000), 'B')).rejects.toThrow(/longer than/);
  });
});
