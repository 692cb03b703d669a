export * from './decoupled-attention.js';
