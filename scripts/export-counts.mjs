// Counts the names each entry point of each package exports (types and values), as docs/architecture.md reports
// them: `node scripts/export-counts.mjs [--list] [package-dir …]` (default: every package with exports).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const root = process.cwd();
const list = process.argv.includes('--list');
const asked = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const dirs = asked.length > 0 ? asked : readdirSync(join(root, 'packages'));

for (const dir of dirs) {
  const manifestPath = join(root, 'packages', dir, 'package.json');
  if (!existsSync(manifestPath)) continue;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  if (manifest.private) continue;
  for (const [subpath, entry] of Object.entries(manifest.exports ?? {})) {
    if (typeof entry !== 'object' || !entry['@peftjs/source']) continue;
    const file = join(root, 'packages', dir, entry['@peftjs/source']);
    const program = ts.createProgram([file], {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      customConditions: ['@peftjs/source'],
      noEmit: true,
    });
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(file);
    const symbol = source && checker.getSymbolAtLocation(source);
    const names = symbol ? checker.getExportsOfModule(symbol) : [];
    const values = names.filter((e) => {
      const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
      return target.flags & ts.SymbolFlags.Value;
    });
    const specifier = subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`;
    console.log(`${specifier}\t${names.length}\t(${values.length} values)`);
    if (list)
      console.log(
        `  ${names
          .map((n) => n.name)
          .sort()
          .join(' ')}`,
      );
  }
}
