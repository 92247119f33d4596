import { describe, expect, it } from 'vitest';
import { OpenGraphParser, parseOpenGraph } from './opengraph.js';

describe('OpenGraph tags', () => {
  it('reads og: meta tags, decodes entities, and falls back to <title> and the description', () => {
    const og = parseOpenGraph(`<!doctype html><html><head>
      <title>The &amp; Title</title>
      <META PROPERTY="og:type" CONTENT="video.movie">
      <meta name="og:url" content="http://x.example/a?b=1&amp;c=2">
      <meta property="og:type" content="second one is ignored">
      <meta name="description" content="  a   short
        description ">
      <meta property="twitter:card" content="not og">
    </head><body><meta property="og:title" content="in the body: not read"></body></html>`);
    expect(og).toEqual({
      'og:type': 'video.movie',
      'og:url': 'http://x.example/a?b=1&c=2',
      'og:title': 'The & Title',
      'og:description': 'a short description',
    });
  });

  it('prefers og:title and og:description to <title> and the description', () => {
    expect(parseOpenGraph('<head><title>t</title><meta name=description content=d><meta property=og:title content=OG><meta property=og:description content=OGD></head>')).toEqual({
      'og:title': 'OG',
      'og:description': 'OGD',
    });
  });

  it('is done at </head> or <body>, whichever comes first, across chunks', () => {
    const p = new OpenGraphParser();
    const page = '<html><head><meta property="og:title" content="split"></he' + 'ad><meta property="og:type" content="late">';
    for (const ch of page) p.write(ch);
    expect(p.done).toBe(true);
    expect(p.end()).toEqual({ 'og:title': 'split' });
    const q = new OpenGraphParser();
    q.write('<html><body><p>no head</p>');
    expect(q.done).toBe(true);
  });

  it('bounds the number and size of tags', () => {
    const many = Array.from({ length: 80 }, (_, i) => `<meta property="og:k${i}" content="v">`).join('');
    expect(Object.keys(parseOpenGraph(`<head>${many}</head>`))).toHaveLength(50);
    const long = parseOpenGraph(`<head><meta property="og:title" content="${'x'.repeat(5000)}"></head>`);
    expect(long['og:title']!.length).toBe(2000);
  });
});
