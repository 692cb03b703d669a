export * from './prompt-matching-loss.js';
