// Lint step: fails when an import crosses a boundary of ../shared/design.md §1.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkTree } from './import-rules.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const problems = checkTree(root);
for (const p of problems) console.error(p);
if (problems.length > 0) {
  console.error(`check-imports: ${problems.length} import(s) break the layering rules`);
  process.exit(1);
}
console.log('check-imports: layering rules hold');
