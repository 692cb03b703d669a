/**
 * Run by the ownership test in a separate process: the evaluation logits (as float32 bits) of every method case
 * built on a freshly created backbone, which no model has ever trained. Prints one JSON object on stdout.
 * Usage: node --conditions=@peftjs/source --import tsx packages/cli/test/fresh-logits.ts <backend>
 */
import { type ConcreteBackend, initBackend } from '@peftjs/core';
import { METHOD_CASES, caseBackbone, caseData, freshLogitBits, tf } from './method-cases.js';

const backend = process.argv[2] as ConcreteBackend;
await initBackend({ prefer: backend, log: false });
const backbone = caseBackbone();
const { images, labels } = caseData();
const result: Record<string, string> = {};
for (const name of Object.keys(METHOD_CASES)) result[name] = await freshLogitBits(name, backbone, images);
tf.dispose([images, labels]);
backbone.dispose();
process.stdout.write(`${JSON.stringify(result)}\n`);
