/**
 * Where each value of a run config came from, so every message can name it: a flag (`--train.lr`), a file and line
 * (`run.yaml:12`), a run folder's manifest, a method preset, the backbone's recipe, or the schema default.
 */

/** The kind of layer a value came from; `user` kinds are what someone wrote for this run. */
export type SourceKind = 'flag' | 'file' | 'manifest' | 'preset' | 'recipe' | 'default';

/** One layer of a config: its kind, its label and, for files, how to find a key's line. */
export interface ConfigSource {
  /** What kind of layer it is. */
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

  /**
   * Records `source` for every value `value` sets at or below `path` (`''`: a whole config). Only values are
   * recorded, not the sections holding them: a file that sets `train.lr` says nothing about `train.epochs`.
   */
  record(path: string, value: unknown, source: ConfigSource): void {
    if (isMapping(value) && Object.keys(value).length > 0) {
      for (const [key, child] of Object.entries(value))
        this.record(path ? `${path}.${key}` : key, child, source);
    } else if (path !== '') {
      this.sources.set(path, source);
    }
  }

  /** The layer that set `path` (or the value holding it, e.g. an array); undefined for a schema default. */
  sourceOf(path: string): ConfigSource | undefined {
    for (let p = path; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      const found = this.sources.get(p);
      if (found !== undefined) return found;
    }
    // A section (an unknown key holding a mapping): the layer of the latest value inside it.
    let inside: ConfigSource | undefined;
    for (const [recorded, source] of this.sources) if (recorded.startsWith(`${path}.`)) inside = source;
    return inside;
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
