/**
 * OpenGraph tags of an HTML page, read as it streams in (htmlparser2's tokenizer: forgiving
 * of broken markup, entities decoded). What a preview needs sits in <head>, so reading stops at
 * </head> or <body>, and the caller stops feeding the page there.
 *
 * Taken: every `<meta property="og:…" content="…">` (also written with `name=`, as some sites
 * do), the first of each; `<title>` when there is no og:title; `<meta name="description">`
 * when there is no og:description. Bounded: at most MAX_TAGS tags of at most MAX_VALUE
 * characters, so a hostile page cannot make the answer (or the cache row) large.
 */
import { Parser } from 'htmlparser2';

const MAX_TAGS = 50;
const MAX_VALUE = 2_000;
const MAX_KEY = 100;

export type OpenGraph = Record<string, string>;

const clip = (s: string): string => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > MAX_VALUE ? `${t.slice(0, MAX_VALUE - 1)}…` : t;
};

export class OpenGraphParser {
  private readonly og: OpenGraph = {};
  private title: string | undefined;
  private description: string | undefined;
  private inTitle = false;
  private titleText = '';
  private finished = false;
  private readonly parser: Parser;

  constructor() {
    this.parser = new Parser(
      {
        onopentag: (name, attribs) => {
          if (this.finished) return;
          if (name === 'body') this.finished = true;
          else if (name === 'title' && this.title === undefined) this.inTitle = true;
          else if (name === 'meta') this.meta(attribs);
        },
        ontext: (text) => {
          if (this.inTitle && this.titleText.length < MAX_VALUE) this.titleText += text;
        },
        onclosetag: (name) => {
          if (name === 'title' && this.inTitle) {
            this.inTitle = false;
            this.title = clip(this.titleText);
          } else if (name === 'head') {
            this.finished = true;
          }
        },
      },
      { decodeEntities: true },
    );
  }

  /** True once the head is over: nothing more to read. */
  get done(): boolean {
    return this.finished;
  }

  write(html: string): void {
    if (!this.finished) this.parser.write(html);
  }

  end(): OpenGraph {
    if (!this.finished) this.parser.end();
    this.finished = true;
    const out: OpenGraph = { ...this.og };
    if (out['og:title'] === undefined && this.title) out['og:title'] = this.title;
    if (out['og:description'] === undefined && this.description) out['og:description'] = this.description;
    return out;
  }

  private meta(attribs: Record<string, string>): void {
    const key = (attribs.property ?? attribs.name ?? '').trim().toLowerCase();
    const content = attribs.content;
    if (content === undefined || key === '') return;
    if (key === 'description') {
      this.description ??= clip(content);
      return;
    }
    if (!key.startsWith('og:') || key.length > MAX_KEY) return;
    if (this.og[key] !== undefined || Object.keys(this.og).length >= MAX_TAGS) return;
    this.og[key] = clip(content);
  }
}

/** The tags of a whole page at once (tests, small pages). */
export function parseOpenGraph(html: string): OpenGraph {
  const p = new OpenGraphParser();
  p.write(html);
  return p.end();
}
