import { PeftError, didYouMean } from '@peftjs/core';
import { join } from 'node:path';
import { optionRows } from '@peftjs/core';
import { checkCombinations } from './checks.js';
import { type CommandContext, exportCommand, prepareCommand, trainCommand } from './commands.js';
import { benchCommand, dataCheckCommand, inspectCommand } from './diagnostics.js';
import { type ResolvedRun, parseFlagValue, readConfigFile, resolveRunConfig } from './config.js';
import { UsageError } from './errors.js';
import { type OptionScope, configHelp, inScope } from './help.js';
import { evalCommand, predictCommand } from './inference.js';
import { DEFAULT_METHOD, methodBaseDir, resolveMethod } from './methods.js';
import { RUN_CONFIG } from './options.js';
import { type Output, Progress } from './progress.js';
import { sweepCommand } from './sweep/command.js';
import { type RunManifest, isRunFolder, resolveRunFolder } from './run-dir.js';

/** Process exit codes `runCli` returns. */
export const EXIT = {
  /** The command succeeded. */
  ok: 0,
  /** The command failed (an error, or `data check` found problems); the reason went to stderr. */
  failure: 1,
  /** The command line was wrong (unknown command, flag or option, bad value) or no command was given. */
  usage: 2,
} as const;

interface CommandSpec {
  readonly summary: string;
  readonly usage: string;
  /** Flags of the command itself (besides config options). */
  readonly flags: Record<string, string>;
  /**
   * The run-config options the command reads (`--help` lists exactly these): `all`, some paths, or null for none.
   * A flag for another option is accepted (old command lines keep working) and noted as ignored.
   */
  readonly options: OptionScope | null;
}

/**
 * What a saved adapter needs: its base weights (not their training-only settings), the backend, and the method only
 * when it comes from a module.
 */
const ADAPTER_OPTIONS = ['backend', 'model', '!model.dropPathRate', '!model.recipe', 'method.name'];
/** What evaluating or predicting reads besides: the data and the evaluation batch. */
const DATA_OPTIONS = ['data', 'train.batchSize', 'train.evalBatchSize'];

const COMMANDS: Record<string, CommandSpec> = {
  train: {
    summary: 'fine-tune a ViT with a PEFT method, select on validation, test once, write a run folder',
    usage: 'peft train --config run.yaml [--dry-run] [--section.option=value …]',
    flags: {
      config: 'run config file (YAML or JSON)',
      'dry-run': 'print the resolved config and parameter report, train nothing',
    },
    options: 'all',
  },
  eval: {
    summary: "evaluate a run's adapter on a split (its config from the run folder's manifest)",
    usage:
      'peft eval RUN_DIR [--split test|val|trainval] [--option=value …]\n       peft eval --config run.yaml --adapter DIR [--split …]',
    flags: {
      config: "run config file (over the run folder's config, if one is given)",
      adapter: 'adapter folder (default RUN_DIR/adapter)',
      split: 'split to evaluate (default test)',
    },
    options: [...ADAPTER_OPTIONS, ...DATA_OPTIONS],
  },
  predict: {
    summary:
      "classify image files with a run's adapter (JSON lines: file, top classes, probabilities, true label)",
    usage:
      'peft predict RUN_DIR IMAGE… [--top-k 5]\n       peft predict --config run.yaml --adapter DIR IMAGE…',
    flags: {
      config: "run config file (over the run folder's config, if one is given)",
      adapter: 'adapter folder (default RUN_DIR/adapter)',
      'top-k': 'classes listed per image, most probable first (default 5)',
    },
    options: [...ADAPTER_OPTIONS, 'data'],
  },
  prepare: {
    summary:
      "the method's data pass alone (as `peft train` runs it last): for SHIP the hierarchy and prototypes",
    usage: 'peft prepare --config run.yaml [--section.option=value …]',
    flags: { config: 'run config file' },
    options: 'all',
  },
  hierarchy: {
    summary: 'same as `peft prepare` (name kept from 0.1)',
    usage: 'peft hierarchy --config run.yaml [--method.options.threshold=0.93 …]',
    flags: { config: 'run config file' },
    options: 'all',
  },
  prototypes: {
    summary: 'same as `peft prepare` (name kept from 0.1)',
    usage: 'peft prototypes --config run.yaml [--method.options.hierarchy.prototypes=200 …]',
    flags: { config: 'run config file' },
    options: 'all',
  },
  export: {
    summary: "verify a run's adapter on its base weights and copy it to a folder",
    usage: 'peft export RUN_DIR --to DIR\n       peft export --config run.yaml --run RUN_DIR --to DIR',
    flags: {
      config: "run config file (over the run folder's config)",
      run: 'run folder (instead of RUN_DIR)',
      to: 'destination folder',
    },
    options: ADAPTER_OPTIONS,
  },
  inspect: {
    summary:
      'tensor table, detected layout and architecture of a .safetensors or .npz file or a Hub reference',
    usage: 'peft inspect FILE|hf:<org>/<repo>[@rev][:file]|timm:<model> [--heads N]',
    flags: { heads: 'head count when it cannot be inferred' },
    options: null,
  },
  bench: {
    summary: 'forward images/s and training-step time of the configured model',
    usage: 'peft bench --config run.yaml [--iters 5]',
    flags: { config: 'run config file', iters: 'timed iterations (default 5)' },
    options: 'all',
  },
  sweep: {
    summary: 'run a grid of peft train jobs (tasks × methods × options × seeds) with a protocol, then report',
    usage:
      'peft sweep --config sweep.yaml [--workers N | --queue redis://host:port[/db] [--return-adapter]] [--out DIR] [--results FILE] [--dry-run] [--report-only]',
    flags: {
      config: 'sweep file (YAML or JSON; see docs/guides/sweeps.md)',
      workers: 'jobs at once on this machine (default: the number of cores)',
      queue: 'put the jobs on this Redis (BullMQ) queue for `peft worker` processes instead',
      'return-adapter': 'with --queue: workers send each adapter back into <out>/runs/<id>/adapter',
      out: 'folder of the run folders (default sweeps/<name>)',
      results: 'results file, JSON lines (default <out>/results.jsonl)',
      'dry-run': 'print the jobs that would run now, run nothing',
      'report-only': 'write the report from the results file, run nothing',
    },
    options: null,
  },
  worker: {
    summary: "take a sweep's jobs from its Redis (BullMQ) queue and run them with peft train, on any machine",
    usage:
      'peft worker --queue redis://host:port[/db][?prefix=name] --sweep NAME [--workers N] [--out DIR] [--stall-seconds S]',
    flags: {
      queue: 'the Redis address the sweep leader was given',
      sweep: "the sweep's name (its queue)",
      workers: 'jobs at once on this machine (default 1)',
      out: 'folder of the run folders (default sweeps/<sweep>)',
      'stall-seconds': 'a job whose worker is silent this long goes to another worker (default 30)',
    },
    options: null,
  },
  'data check': {
    summary: 'check every split: files exist and decode, labels in range, no duplicates, none empty',
    usage: 'peft data check --config run.yaml',
    flags: { config: 'run config file' },
    options: ['backend', 'model', 'data'],
  },
};

/** Flags every command takes. */
const GLOBAL_FLAGS: Record<string, string> = {
  verbose: 'also print the backend choice (every backend skipped, and why) and tfjs notices',
  help: 'this text',
};

/** A command line split by `parseArgs`. */
interface ParsedArgs {
  /** The command (`train`, `eval`, …; `data check` for the two-word one), or `''` when none was given. */
  command: string;
  /** Arguments that are not flags, after the command. */
  positional: string[];
  /**
   * Flag values by name (without `--`), parsed as JSON when possible; bare switches are `true`, `-h` sets
   * `help`.
   */
  flags: Record<string, unknown>;
}

/** Flags that take no value: `--dry-run file.png` leaves `file.png` positional. */
const SWITCHES = new Set(['help', 'dry-run', 'verbose', 'report-only', 'return-adapter']);

/** `cmd [sub] --flag value --flag=value --switch positional…`. */
function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const flags: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-h') {
      flags.help = true;
    } else if (arg.startsWith('--')) {
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      if (eq >= 0) {
        flags[body.slice(0, eq)] = parseFlagValue(body.slice(eq + 1), body.slice(0, eq));
      } else {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--') && !SWITCHES.has(body)) {
          flags[body] = parseFlagValue(next, body);
          i++;
        } else {
          flags[body] = true;
        }
      }
    } else {
      positional.push(arg);
    }
  }
  let command = positional.shift() ?? '';
  if (command === 'data' && positional[0] === 'check') command = `data ${positional.shift()}`;
  return { command, positional, flags };
}

function globalHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'peft — parameter-efficient fine-tuning of Vision Transformers on TensorFlow.js (SHIP, VPT, LoRA, adapters…)',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`),
    '',
    'Run `peft <command> --help` for its options. Exit codes: 0 success, 1 run failure, 2 usage error.',
  ].join('\n');
}

/** The method `--help` describes: `--method.name`, else the config file's, else the default. */
async function helpMethod(flags: Record<string, unknown>) {
  const file = typeof flags.config === 'string' ? flags.config : undefined;
  let name = flags['method.name'];
  if (name === undefined && file) {
    const section = (await readConfigFile(file)).method;
    name = typeof section === 'object' && section !== null ? (section as { name?: unknown }).name : undefined;
  }
  return resolveMethod(typeof name === 'string' ? name : DEFAULT_METHOD, methodBaseDir(file));
}

async function commandHelp(name: string, spec: CommandSpec, flags: Record<string, unknown>): Promise<string> {
  const lines = [`peft ${name} — ${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Flags:'];
  for (const [flag, text] of Object.entries({ ...spec.flags, ...GLOBAL_FLAGS }))
    lines.push(`  --${flag.padEnd(22)} ${text}`);
  if (spec.options !== null) lines.push(...configHelp(await helpMethod(flags), spec.options));
  return lines.join('\n');
}

/** Every option path of the run config (for telling an option of another command from a typo). */
const RUN_OPTION_PATHS = new Set(optionRows(RUN_CONFIG).map((row) => row.path));

/** Config flags outside the command's scope: still resolved (old command lines keep working), but said to be ignored. */
function ignoredFlags(name: string, scope: OptionScope, flags: readonly [string, unknown][]): string[] {
  const outside = flags
    .map(([path]) => path)
    .filter((path) => !inScope(path, scope) && (RUN_OPTION_PATHS.has(path) || path.startsWith('method.')));
  return outside.length === 0
    ? []
    : [
        `${outside.map((p) => `--${p}`).join(', ')} ${outside.length === 1 ? 'does' : 'do'} not apply to peft ${name}: ignored`,
      ];
}

function flagString(flags: Record<string, unknown>, name: string, required: boolean): string | undefined {
  const value = flags[name];
  if (value === undefined) {
    if (required) throw new UsageError(`missing --${name}`);
    return undefined;
  }
  return String(value);
}

/** A command's run config: a run folder's (RUN_DIR or --run) under the file and flags, or the file and flags. */
async function commandRun(
  parsed: ParsedArgs,
  configFlags: [string, unknown][],
  folder: string | undefined,
): Promise<{ run: ResolvedRun; manifest?: RunManifest; notes: readonly string[] }> {
  const file = flagString(parsed.flags, 'config', false);
  if (folder !== undefined) {
    const { run, manifest, notes } = await resolveRunFolder(folder, {
      ...(file ? { file } : {}),
      flags: configFlags,
    });
    return { run, manifest, notes };
  }
  return { run: await resolveRunConfig({ ...(file ? { file } : {}), flags: configFlags }), notes: [] };
}

/** The positive integer value of `--name`, or `fallback`. */
function flagCount(flags: Record<string, unknown>, name: string, fallback: number): number {
  const value = flags[name] ?? fallback;
  if (!Number.isInteger(value) || (value as number) < 1)
    throw new UsageError(`--${name} must be a positive integer; got ${JSON.stringify(value)}`);
  return value as number;
}

/** The run folder a command names: its first argument when that is one, else (`peft export`) `--run` if it is one. */
function runFolderArgument(parsed: ParsedArgs): string | undefined {
  const [first] = parsed.positional;
  if (isRunFolder(first)) return first;
  const flag = parsed.command === 'export' ? flagString(parsed.flags, 'run', false) : undefined;
  return isRunFolder(flag) ? flag : undefined;
}

/** `peft sweep`: its own flags only (the sweep file holds every run option). */
async function sweep(parsed: ParsedArgs, ctx: CommandContext): Promise<number> {
  const failed = await sweepCommand(
    {
      file: flagString(parsed.flags, 'config', true) as string,
      ...(parsed.flags.out !== undefined ? { out: String(parsed.flags.out) } : {}),
      ...(parsed.flags.results !== undefined ? { results: String(parsed.flags.results) } : {}),
      ...(parsed.flags.workers !== undefined ? { workers: flagCount(parsed.flags, 'workers', 1) } : {}),
      ...(parsed.flags.queue !== undefined ? { queue: String(parsed.flags.queue) } : {}),
      returnAdapter: parsed.flags['return-adapter'] === true,
      dryRun: parsed.flags['dry-run'] === true,
      reportOnly: parsed.flags['report-only'] === true,
    },
    ctx.out,
    ctx.err,
  );
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

/** Runs a command once its arguments are parsed; returns the exit code. */
async function dispatch(parsed: ParsedArgs, spec: CommandSpec, ctx: CommandContext): Promise<number> {
  const own = new Set([...Object.keys(spec.flags), ...Object.keys(GLOBAL_FLAGS)]);
  const configFlags = Object.entries(parsed.flags).filter(([key]) => !own.has(key));
  if (spec.options === null && configFlags.length > 0) {
    const [key] = configFlags[0] as [string, unknown];
    throw new UsageError(`unknown flag --${key}${didYouMean(key, [...own])}`);
  }
  if (parsed.command === 'sweep') return sweep(parsed, ctx);
  if (parsed.command === 'worker') {
    // Loaded on use: only `peft worker` (and `peft sweep --queue`) load the queue client.
    const { workerCommand } = await import('./sweep/worker.js');
    return await workerCommand(parsed.flags, ctx);
  }
  if (parsed.command === 'inspect') {
    const file = parsed.positional[0];
    if (!file) throw new UsageError('peft inspect needs a file');
    const heads = parsed.flags.heads;
    await inspectCommand(ctx, file, typeof heads === 'number' ? { heads } : {});
    return EXIT.ok;
  }
  const usesFolder = ['eval', 'predict', 'export'].includes(parsed.command);
  const folder = usesFolder ? runFolderArgument(parsed) : undefined;
  if (folder !== undefined && parsed.positional[0] === folder) parsed.positional.shift();
  const resolved = await commandRun(parsed, configFlags, folder);
  const ignored = ignoredFlags(parsed.command, spec.options ?? [], configFlags);
  for (const note of [...resolved.notes, ...ignored])
    ctx.progress.line(note.startsWith('using') ? note : `note: ${note}`);
  let run = resolved.run;
  const adapter = () =>
    flagString(parsed.flags, 'adapter', folder === undefined) ?? join(folder as string, 'adapter');
  switch (parsed.command) {
    case 'train':
      run = { ...run, notes: [...run.notes, ...checkCombinations(run)] };
      await trainCommand(run, ctx, { dryRun: parsed.flags['dry-run'] === true });
      return EXIT.ok;
    case 'eval': {
      const split = (flagString(parsed.flags, 'split', false) ?? 'test') as 'test' | 'val' | 'trainval';
      if (!['test', 'val', 'trainval'].includes(split))
        throw new UsageError(`--split must be test, val or trainval; got "${split}"`);
      await evalCommand(run, ctx, {
        adapter: adapter(),
        split,
        ...(resolved.manifest ? { manifest: resolved.manifest } : {}),
      });
      return EXIT.ok;
    }
    case 'predict':
      await predictCommand(run, ctx, {
        adapter: adapter(),
        images: parsed.positional,
        topK: flagCount(parsed.flags, 'top-k', 5),
        ...(resolved.manifest ? { manifest: resolved.manifest } : {}),
      });
      return EXIT.ok;
    case 'prepare':
    case 'hierarchy':
    case 'prototypes':
      await prepareCommand(run, ctx);
      return EXIT.ok;
    case 'export': {
      // A folder without manifest.json (an older run) still works with --config.
      const from = folder ?? flagString(parsed.flags, 'run', false) ?? parsed.positional[0];
      if (from === undefined)
        throw new UsageError('peft export needs a run folder: peft export RUN_DIR --to DIR');
      await exportCommand(run, ctx, { run: from, to: flagString(parsed.flags, 'to', true) as string });
      return EXIT.ok;
    }
    case 'bench':
      await benchCommand(run, ctx, { iters: flagCount(parsed.flags, 'iters', 5) });
      return EXIT.ok;
    case 'data check':
      return (await dataCheckCommand(run.config, ctx)) ? EXIT.ok : EXIT.failure;
    default:
      throw new UsageError(`unknown command "${parsed.command}"`);
  }
}

/**
 * Runs the CLI and returns its exit code; output goes to the given streams (the `peft` binary passes stdout and
 * stderr). Usage mistakes exit 2 with one message, run failures exit 1.
 */
export async function runCli(argv: readonly string[], io: { out: Output; err: Output }): Promise<number> {
  try {
    const parsed = parseArgs(argv);
    const ctx: CommandContext = {
      out: io.out,
      err: io.err,
      progress: new Progress(io.err),
      verbose: parsed.flags.verbose === true,
    };
    if (parsed.command === '' || parsed.command === 'help') {
      io.out.write(`${globalHelp()}\n`);
      return parsed.command === '' && !parsed.flags.help ? EXIT.usage : EXIT.ok;
    }
    const spec = COMMANDS[parsed.command];
    if (!spec) {
      throw new UsageError(
        `unknown command "${parsed.command}"${didYouMean(parsed.command, Object.keys(COMMANDS))}`,
      );
    }
    if (parsed.flags.help) {
      io.out.write(`${await commandHelp(parsed.command, spec, parsed.flags)}\n`);
      return EXIT.ok;
    }
    return await dispatch(parsed, spec, ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err.write(`peft: ${error.message}\n`);
      return EXIT.usage;
    }
    const message =
      error instanceof PeftError ? error.message : error instanceof Error ? error.message : String(error);
    io.err.write(`peft: ${message}\n`);
    return EXIT.failure;
  }
}
