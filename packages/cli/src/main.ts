import { PeftError, didYouMean } from '@peftjs/core';
import {
  type CommandContext,
  evalCommand,
  exportCommand,
  predictCommand,
  prepareCommand,
  trainCommand,
} from './commands.js';
import { benchCommand, dataCheckCommand, inspectCommand } from './diagnostics.js';
import { parseFlagValue, readConfigFile, resolveRunConfig } from './config.js';
import { UsageError } from './errors.js';
import { configHelp } from './help.js';
import { DEFAULT_METHOD, methodBaseDir, resolveMethod } from './methods.js';
import { type Output, Progress } from './progress.js';
import { sweepCommand } from './sweep/command.js';

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
  /** Whether the run-config options apply (then `--help` lists them all). */
  readonly config: boolean;
}

const COMMANDS: Record<string, CommandSpec> = {
  train: {
    summary: 'fine-tune a ViT with a PEFT method, select on validation, test once, write a run folder',
    usage: 'peft train --config run.yaml [--dry-run] [--section.option=value …]',
    flags: {
      config: 'run config file (YAML or JSON)',
      'dry-run': 'print the resolved config and parameter report, train nothing',
    },
    config: true,
  },
  eval: {
    summary: 'evaluate a saved adapter on a split',
    usage: 'peft eval --config run.yaml --adapter DIR [--split test|val|trainval]',
    flags: {
      config: 'run config file',
      adapter: 'adapter folder',
      split: 'split to evaluate (default test)',
    },
    config: true,
  },
  predict: {
    summary: 'classify image files with a saved adapter (JSON lines out)',
    usage: 'peft predict --config run.yaml --adapter DIR IMAGE…',
    flags: { config: 'run config file', adapter: 'adapter folder' },
    config: true,
  },
  prepare: {
    summary:
      "the method's data pass alone (as `peft train` runs it last): for SHIP the hierarchy and prototypes",
    usage: 'peft prepare --config run.yaml [--section.option=value …]',
    flags: { config: 'run config file' },
    config: true,
  },
  hierarchy: {
    summary: 'same as `peft prepare` (name kept from 0.1)',
    usage: 'peft hierarchy --config run.yaml [--method.options.threshold=0.93 …]',
    flags: { config: 'run config file' },
    config: true,
  },
  prototypes: {
    summary: 'same as `peft prepare` (name kept from 0.1)',
    usage: 'peft prototypes --config run.yaml [--method.options.hierarchy.prototypes=200 …]',
    flags: { config: 'run config file' },
    config: true,
  },
  export: {
    summary: "verify a run's adapter on its base weights and copy it to a folder",
    usage: 'peft export --config run.yaml --run RUN_DIR --to DIR',
    flags: { config: 'run config file', run: 'run folder', to: 'destination folder' },
    config: true,
  },
  inspect: {
    summary:
      'tensor table, detected layout and architecture of a .safetensors or .npz file or a Hub reference',
    usage: 'peft inspect FILE|hf:<org>/<repo>[@rev][:file]|timm:<model> [--heads N]',
    flags: { heads: 'head count when it cannot be inferred' },
    config: false,
  },
  bench: {
    summary: 'forward images/s and training-step time of the configured model',
    usage: 'peft bench --config run.yaml [--iters 5]',
    flags: { config: 'run config file', iters: 'timed iterations (default 5)' },
    config: true,
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
    config: false,
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
    config: false,
  },
  'data check': {
    summary: 'check every split: files exist and decode, labels in range, no duplicates, none empty',
    usage: 'peft data check --config run.yaml',
    flags: { config: 'run config file' },
    config: true,
  },
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
const SWITCHES = new Set(['help', 'dry-run', 'report-only', 'return-adapter']);

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
        flags[body.slice(0, eq)] = parseFlagValue(body.slice(eq + 1));
      } else {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--') && !SWITCHES.has(body)) {
          flags[body] = parseFlagValue(next);
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
  for (const [flag, text] of Object.entries(spec.flags)) lines.push(`  --${flag.padEnd(22)} ${text}`);
  lines.push(`  --${'help'.padEnd(22)} this text`);
  if (spec.config) lines.push(...configHelp(await helpMethod(flags)));
  return lines.join('\n');
}

function flagString(flags: Record<string, unknown>, name: string, required: boolean): string | undefined {
  const value = flags[name];
  if (value === undefined) {
    if (required) throw new UsageError(`missing --${name}`);
    return undefined;
  }
  return String(value);
}

/**
 * Runs the CLI and returns its exit code; output goes to the given streams (the `peft` binary passes stdout and
 * stderr). Usage mistakes exit 2 with one message, run failures exit 1.
 */
export async function runCli(argv: readonly string[], io: { out: Output; err: Output }): Promise<number> {
  const ctx: CommandContext = { out: io.out, err: io.err, progress: new Progress(io.err) };
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(argv);
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
    const own = new Set([...Object.keys(spec.flags), 'help']);
    const configFlags = Object.entries(parsed.flags).filter(([key]) => !own.has(key));
    if (!spec.config && configFlags.length > 0) {
      const [key] = configFlags[0] as [string, unknown];
      throw new UsageError(`unknown flag --${key}${didYouMean(key, [...own])}`);
    }
    if (parsed.command === 'sweep') {
      const workers = parsed.flags.workers;
      if (workers !== undefined && (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1))
        throw new UsageError(`--workers must be a positive integer; got ${JSON.stringify(workers)}`);
      const failed = await sweepCommand(
        {
          file: flagString(parsed.flags, 'config', true) as string,
          ...(parsed.flags.out !== undefined ? { out: String(parsed.flags.out) } : {}),
          ...(parsed.flags.results !== undefined ? { results: String(parsed.flags.results) } : {}),
          ...(typeof workers === 'number' ? { workers } : {}),
          ...(parsed.flags.queue !== undefined ? { queue: String(parsed.flags.queue) } : {}),
          returnAdapter: parsed.flags['return-adapter'] === true,
          dryRun: parsed.flags['dry-run'] === true,
          reportOnly: parsed.flags['report-only'] === true,
        },
        io.out,
        io.err,
      );
      return failed > 0 ? EXIT.failure : EXIT.ok;
    }
    if (parsed.command === 'worker') {
      // Loaded on use: only `peft worker` (and `peft sweep --queue`) load the queue client.
      const { workerCommand } = await import('./sweep/worker.js');
      return await workerCommand(parsed.flags, io);
    }
    if (parsed.command === 'inspect') {
      const file = parsed.positional[0];
      if (!file) throw new UsageError('peft inspect needs a file');
      const heads = parsed.flags.heads;
      await inspectCommand(ctx, file, typeof heads === 'number' ? { heads } : {});
      return EXIT.ok;
    }
    const configFile = flagString(parsed.flags, 'config', false);
    const run = await resolveRunConfig({ ...(configFile ? { file: configFile } : {}), flags: configFlags });
    switch (parsed.command) {
      case 'train':
        await trainCommand(run, ctx, { dryRun: parsed.flags['dry-run'] === true });
        return EXIT.ok;
      case 'eval': {
        const split = (flagString(parsed.flags, 'split', false) ?? 'test') as 'test' | 'val' | 'trainval';
        if (!['test', 'val', 'trainval'].includes(split))
          throw new UsageError(`--split must be test, val or trainval; got "${split}"`);
        await evalCommand(run, ctx, { adapter: flagString(parsed.flags, 'adapter', true) as string, split });
        return EXIT.ok;
      }
      case 'predict':
        await predictCommand(run, ctx, {
          adapter: flagString(parsed.flags, 'adapter', true) as string,
          images: parsed.positional,
        });
        return EXIT.ok;
      case 'prepare':
      case 'hierarchy':
      case 'prototypes':
        await prepareCommand(run, ctx);
        return EXIT.ok;
      case 'export':
        await exportCommand(run, ctx, {
          run: flagString(parsed.flags, 'run', true) as string,
          to: flagString(parsed.flags, 'to', true) as string,
        });
        return EXIT.ok;
      case 'bench':
        await benchCommand(run, ctx, { iters: Number(parsed.flags.iters ?? 5) });
        return EXIT.ok;
      case 'data check':
        return (await dataCheckCommand(run.config, ctx)) ? EXIT.ok : EXIT.failure;
      default:
        throw new UsageError(`unknown command "${parsed.command}"`);
    }
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
