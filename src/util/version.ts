// This package's version, from its package.json (dist/src/util → the package root).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(fileURLToPath(import.meta.url), '../../../../package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
