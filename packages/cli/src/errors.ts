/** A mistake in what the user typed — an unknown command, flag or option, a bad value (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
