#!/usr/bin/env node
import { runCli } from './main.js';
import { streamOutput } from './progress.js';

process.exitCode = await runCli(process.argv.slice(2), {
  out: streamOutput(process.stdout),
  err: streamOutput(process.stderr),
});
