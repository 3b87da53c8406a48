// Reads InferenceService files (YAML or JSON, several documents per file allowed) and reports
// every problem at once, each with its file and path.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { InferenceServiceSchema, type InferenceService } from './schema.js';

export interface LoadedService {
  service: InferenceService;
  file: string;
  /** Absolute model path for file:// sources; undefined for built-in sources. */
  modelPath?: string;
}

export class SpecError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** Formats zod issues as `path.to.field: message`, one per problem. */
export function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = issue.path.map(String);
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Report the alternative that got furthest (the deepest paths): for `auto | {nodes…}` given an
      // object, that is the object's own problems, not "expected 'auto'".
      const depth = (branch: z.core.$ZodIssue[]) =>
        Math.max(
          ...branch.map((i) => i.path.length + (i.code === 'invalid_value' || i.code === 'invalid_type' ? 0 : 0.5)),
        );
      const best = issue.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
      if (depth(best) > 0) {
        out.push(...formatIssues(best.map((i) => ({ ...i, path: [...issue.path, ...i.path] }))));
        continue;
      }
      out.push(`${path.join('.')}: ${issue.message}`);
      continue;
    }
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(`${[...path, key].join('.')}: unknown field`);
    } else if (issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined) {
      out.push(`${path.join('.') || '(document)'}: required`);
    } else {
      out.push(`${path.join('.') || '(document)'}: ${issue.message}`);
    }
  }
  return out;
}

/** Validates one parsed document; problems are path-qualified. */
export function validateDocument(doc: unknown): { service?: InferenceService; problems: string[] } {
  const result = InferenceServiceSchema.safeParse(doc, { reportInput: true });
  // One line per problem, even where two checks (integer, maximum) say the same.
  if (!result.success) return { problems: [...new Set(formatIssues(result.error.issues))] };
  return { service: result.data, problems: [] };
}

/**
 * One parsed document validated; its problems go to `problems`, each after `where` (none when
 * empty). A file:// source is resolved against `baseDir` and must exist.
 */
export function loadDocument(
  data: unknown,
  where: string,
  baseDir: string,
  problems: string[],
): LoadedService | undefined {
  const at = where ? `${where}: ` : '';
  const { service, problems: found } = validateDocument(data);
  problems.push(...found.map((p) => `${at}${p}`));
  if (!service) return undefined;
  const entry: LoadedService = { service, file: where };
  const source = service.spec.model.source;
  if (source.startsWith('file://')) {
    const raw = source.slice('file://'.length);
    entry.modelPath = isAbsolute(raw) ? raw : resolve(baseDir, raw);
    if (!existsSync(entry.modelPath)) problems.push(`${at}spec.model.source: file not found: ${entry.modelPath}`);
  }
  return entry;
}

/** A name or a served model given twice among these services. */
export function duplicates(loaded: LoadedService[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const { service, file } of loaded) {
    const { name } = service.metadata;
    const served = service.spec.model.servedName;
    const at = file ? `${file}: ` : '';
    if (seen.has(`name:${name}`))
      problems.push(`${at}metadata.name: "${name}" is also used in ${seen.get(`name:${name}`)}`);
    if (seen.has(`model:${served}`))
      problems.push(`${at}spec.model.servedName: "${served}" is also served by ${seen.get(`model:${served}`)}`);
    seen.set(`name:${name}`, file);
    seen.set(`model:${served}`, file);
  }
  return problems;
}

/** A served model that another service (`owners`: served model → service) serves already. */
export function servedByOthers(loaded: LoadedService[], owners: ReadonlyMap<string, string>): string[] {
  return loaded.flatMap(({ service, file }) => {
    const served = service.spec.model.servedName;
    const owner = owners.get(served);
    return owner !== undefined && owner !== service.metadata.name
      ? [`${file ? `${file}: ` : ''}spec.model.servedName: "${served}" is served by the service "${owner}"`]
      : [];
  });
}

/** Loads and validates every document of every file; throws SpecError listing all problems. */
export function loadServices(files: string[]): LoadedService[] {
  const problems: string[] = [];
  const loaded: LoadedService[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      continue;
    }
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((doc, i) => {
      const where = list.length > 1 ? `${file}[${i}]` : file;
      if (doc.errors.length > 0) {
        for (const e of doc.errors) problems.push(`${where}: invalid YAML: ${e.message.split('\n')[0]}`);
        return;
      }
      let data: unknown;
      try {
        data = doc.toJS(); // an alias without its anchor throws here, not as a parse error
      } catch (err) {
        problems.push(`${where}: invalid YAML: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      if (data === null || data === undefined) return; // empty document, e.g. a trailing '---'
      const entry = loadDocument(data, where, dirname(file), problems);
      if (entry) loaded.push({ ...entry, file });
    });
  }
  problems.push(...duplicates(loaded));
  if (files.length === 0) problems.push('no InferenceService file given');
  else if (loaded.length === 0 && problems.length === 0)
    problems.push(`${files.join(', ')}: no InferenceService document found`);
  if (problems.length > 0) throw new SpecError(problems);
  return loaded;
}
