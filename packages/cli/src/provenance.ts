/**
 * Where each value of a run config came from, so every message can name it: a flag (`--train.lr`), a file and line
 * (`run.yaml:12`), a run folder's manifest, a method preset, the backbone's recipe, or the schema default.
 */

/** The kind of layer a value came from; `user` kinds are what someone wrote for this run. */
export type SourceKind = 'flag' | 'file' | 'manifest' | 'preset' | 'recipe' | 'default';

/** One layer of a config: its kind, its label and, for files, how to find a key's line. */
export interface ConfigSource {
  readonly kind: SourceKind;
  /** `--train.lr`, `run.yaml`, `runs/x/manifest.json`, `preset vtab:dtd`, `recipe models/x.recipe.json`. */
  readonly label: string;
  /** For YAML/JSON files: the line of a dotted path's key, or of its deepest ancestor the file has. */
  readonly lineOf?: (path: string) => number | undefined;
}

/** Kinds whose values someone chose for this run (as opposed to defaults a recipe, preset or schema supplies). */
const USER_KINDS: ReadonlySet<SourceKind> = new Set(['flag', 'file', 'manifest']);

type Mapping = Record<string, unknown>;

const isMapping = (value: unknown): value is Mapping =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The source of every dotted path of a merged config (later records win, as later layers do when merging). */
export class Provenance {
  private readonly sources = new Map<string, ConfigSource>();

  /** Records `source` for `path` and every path below it in `value` (`''`: a whole config's keys). */
  record(path: string, value: unknown, source: ConfigSource): void {
    if (path !== '') this.sources.set(path, source);
    if (isMapping(value)) {
      for (const [key, child] of Object.entries(value))
        this.record(path ? `${path}.${key}` : key, child, source);
    }
  }

  /** The layer `path` (or its closest recorded ancestor) came from; undefined for a schema default. */
  sourceOf(path: string): ConfigSource | undefined {
    for (let p = path; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      const found = this.sources.get(p);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Where `path` came from, as a message prefix: `--train.lr`, `run.yaml:12`, `recipe …`, or `default`. */
  describe(path: string): string {
    const source = this.sourceOf(path);
    if (source === undefined) return 'default';
    const line = source.lineOf?.(path);
    return line === undefined ? source.label : `${source.label}:${line}`;
  }

  /** Whether someone set `path` for this run (a flag, a config file, a run folder's manifest). */
  userSet(path: string): boolean {
    const kind = this.sourceOf(path)?.kind;
    return kind !== undefined && USER_KINDS.has(kind);
  }

  /** The kind of source `path` came from (`default` when nothing recorded it). */
  kindOf(path: string): SourceKind {
    return this.sourceOf(path)?.kind ?? 'default';
  }
}
