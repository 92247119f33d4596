// The import rules of ../shared/design.md §1, as a check that cannot be forgotten:
//   internal/   imports no component, no setup/, no cmd/
//   <c>/        imports another component only through its api/; from setup/ only the
//               shared services (config, jetstream, process)
//   setup/      imports a component's factory (<c>/<c>.js) and api/, never its insides
//   cmd/        imports only setup/
// bench/ and scripts/ may import anything. Test files may also import setup/ (to start servers).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const components = ['roomserver', 'syncapi', 'clientapi', 'federationapi', 'userapi', 'mediaapi', 'appservice'];
const sharedSetup = ['setup/config', 'setup/jetstream', 'setup/process', 'setup/flags.ts'];

const importRe = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

export function importsOf(source) {
  const out = [];
  for (const m of source.matchAll(importRe)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** Returns a message when `from` (repo-relative file) may not import `to` (repo-relative path). */
export function violation(from, to) {
  const top = (p) => p.split('/')[0];
  const fromTop = top(from);
  const toTop = top(to);
  const isTest = /\.test\.ts$|\/testing\.ts$/.test(from);
  if (fromTop === 'bench' || fromTop === 'scripts') return undefined;
  if (fromTop === 'internal') {
    if (components.includes(toTop) || toTop === 'setup' || toTop === 'cmd') return `internal/ may not import ${toTop}/`;
    return undefined;
  }
  if (fromTop === 'cmd') {
    if (toTop !== 'setup' && toTop !== 'cmd') return 'cmd/ may import only setup/';
    return undefined;
  }
  if (components.includes(fromTop)) {
    if (components.includes(toTop) && toTop !== fromTop) {
      if (!to.startsWith(`${toTop}/api/`) && to !== `${toTop}/api`) return `${fromTop}/ may import ${toTop}/ only through ${toTop}/api/`;
    }
    if (toTop === 'setup' && !isTest && !sharedSetup.some((s) => to === s || to.startsWith(`${s}/`) || to.startsWith(s.replace(/\.ts$/, '')))) {
      return `${fromTop}/ may import from setup/ only ${sharedSetup.join(', ')}`;
    }
    if (toTop === 'cmd') return `${fromTop}/ may not import cmd/`;
    return undefined;
  }
  if (fromTop === 'setup') {
    if (components.includes(toTop)) {
      const ok = to.startsWith(`${toTop}/api/`) || to === `${toTop}/${toTop}.ts` || to === `${toTop}/${toTop}.js`;
      if (!ok && !isTest) return `setup/ may use ${toTop}/ only through ${toTop}/${toTop}.ts and ${toTop}/api/`;
    }
    if (toTop === 'cmd') return 'setup/ may not import cmd/';
  }
  return undefined;
}

function* sourceFiles(dir, root) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) yield* sourceFiles(full, root);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) yield path.relative(root, full);
  }
}

export function checkTree(root) {
  const problems = [];
  const tops = ['cmd', 'setup', 'internal', ...components];
  for (const top of tops) {
    let st;
    try {
      st = statSync(path.join(root, top));
    } catch {
      continue;
    }
    if (!st.isDirectory()) continue;
    for (const file of sourceFiles(path.join(root, top), root)) {
      const src = readFileSync(path.join(root, file), 'utf8');
      for (const spec of importsOf(src)) {
        if (!spec.startsWith('.')) continue;
        const target = path.relative(root, path.resolve(path.dirname(path.join(root, file)), spec)).split(path.sep).join('/');
        const msg = violation(file, target);
        if (msg) problems.push(`${file}: imports ${spec}: ${msg}`);
      }
    }
  }
  return problems;
}
