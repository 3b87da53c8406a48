// The dashboard's files: its page, its own script (compiled beside this module), and the npm
// packages it runs on (Preact, htm, uPlot) served from node_modules as ES modules. No bundler and
// no build step: the page's import map names each package's file.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StaticFile } from '../core/control.js';
import { PAGE, STYLE } from './page.js';

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

const here = dirname(fileURLToPath(import.meta.url));
const resolved = (specifier: string) => fileURLToPath(import.meta.resolve(specifier));
const uplotDir = dirname(resolved('uplot'));

/** Name under /ui/ → where the file is and its type. */
const FILES: Record<string, { path: () => string; contentType: string }> = {
  'lib/preact.js': { path: () => resolved('preact'), contentType: JS },
  'lib/hooks.js': { path: () => resolved('preact/hooks'), contentType: JS },
  'lib/htm.js': { path: () => resolved('htm'), contentType: JS },
  'lib/htm-preact.js': { path: () => resolved('htm/preact'), contentType: JS },
  'lib/uplot.js': { path: () => join(uplotDir, 'uPlot.esm.js'), contentType: JS },
  'lib/uplot.css': { path: () => join(uplotDir, 'uPlot.min.css'), contentType: CSS },
};

/** The dashboard file at `name` (below /ui/), or undefined. Read once, then kept. */
export function dashboardFiles(): (name: string) => StaticFile | undefined {
  const cache = new Map<string, StaticFile>();
  cache.set('index.html', { contentType: 'text/html; charset=utf-8', body: Buffer.from(PAGE) });
  cache.set('style.css', { contentType: CSS, body: Buffer.from(STYLE) });
  return (name) => {
    const hit = cache.get(name);
    if (hit) return hit;
    // The dashboard's own modules: app.js and the modules it imports, compiled beside this one.
    const own = /^app\/[a-z-]+\.js$/.test(name) ? { path: () => join(here, name), contentType: JS } : undefined;
    const entry = FILES[name] ?? own;
    if (!entry) return undefined;
    const file = { contentType: entry.contentType, body: readFileSync(entry.path()) };
    cache.set(name, file);
    return file;
  };
}
