import { tf } from '@peftjs/core';

// Tests run tfjs in production mode, as `initBackend` does: no per-op debug checks, no console notices.
tf.env().set('PROD', true);
