import { describe, expect, it } from 'vitest';
import { contentDisposition, dispositionFileName, isInlineSafe, rfc5987Encode, servedContentType, uploadContentType } from './headers.js';

describe('media headers', () => {
  it('shows only safe types inline', () => {
    expect(isInlineSafe('image/png')).toBe(true);
    expect(isInlineSafe('Text/Plain; charset=utf-8')).toBe(true);
    expect(isInlineSafe('text/html')).toBe(false);
    expect(isInlineSafe('image/svg+xml')).toBe(false);
    expect(isInlineSafe('application/javascript')).toBe(false);
  });

  it('encodes file names per RFC 6266 / 5987', () => {
    expect(contentDisposition('image/png', 'cat.png')).toBe('inline; filename=cat.png');
    expect(contentDisposition('text/html', 'a b.html')).toBe("attachment; filename*=utf-8''a%20b.html");
    expect(contentDisposition('application/pdf', null)).toBe('attachment');
    expect(rfc5987Encode('☕\r\n;"\'.txt')).toBe("utf-8''%E2%98%95%0D%0A%3B%22%27.txt");
  });

  it('adds a charset to text and cleans up upload types', () => {
    expect(servedContentType('text/plain')).toBe('text/plain; charset=UTF-8');
    expect(servedContentType('text/plain; charset=latin1')).toBe('text/plain; charset=latin1');
    expect(servedContentType('image/png')).toBe('image/png');
    expect(uploadContentType(undefined)).toBe('application/octet-stream');
    expect(uploadContentType('image/png')).toBe('image/png');
    expect(uploadContentType('not a type')).toBe('application/octet-stream');
    expect(uploadContentType('text/plain; charset=utf-8')).toBe('text/plain; charset=utf-8');
  });

  it("reads the file name of another server's Content-Disposition, as we write it and as others do", () => {
    for (const name of ['cat.png', '☕ a"b.txt', 'çat.png']) expect(dispositionFileName(contentDisposition('image/png', name))).toBe(name);
    expect(dispositionFileName('attachment; filename="a \\"q\\".txt"')).toBe('a "q".txt');
    expect(dispositionFileName("inline; filename=plain.txt; filename*=UTF-8''%C3%A9t%C3%A9.txt")).toBe('été.txt');
    expect(dispositionFileName('inline')).toBeNull();
    expect(dispositionFileName(undefined)).toBeNull();
    expect(dispositionFileName("inline; filename*=utf-8''%E0%A4%A")).toBeNull();
    expect(dispositionFileName("inline; filename*=utf-8''a%0Ab")).toBeNull();
    expect(dispositionFileName(`inline; filename=${'x'.repeat(300)}`)).toBeNull();
  });
});
