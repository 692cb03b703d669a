export * from './ship-prompts.js';
