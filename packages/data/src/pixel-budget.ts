/**
 * A weighted semaphore over pixels being decoded at once, so that many parallel decodes of large images cannot
 * add up to gigabytes. A request above the capacity is clamped to it: such an image waits for the whole budget
 * and then decodes alone. Waiters are served in arrival order (no starvation of large images).
 */
export class PixelBudget {
  readonly #capacity: number;
  #free: number;
  readonly #waiting: { need: number; resolve: () => void }[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#free = capacity;
  }

  /** Runs `fn` while holding `pixels` of the budget (clamped to the capacity). */
  async run<T>(pixels: number, fn: () => Promise<T>): Promise<T> {
    const need = Math.max(1, Math.min(pixels, this.#capacity));
    if (this.#waiting.length === 0 && need <= this.#free) this.#free -= need;
    else await new Promise<void>((resolve) => this.#waiting.push({ need, resolve }));
    try {
      return await fn();
    } finally {
      this.#free += need;
      this.#wake();
    }
  }

  #wake(): void {
    for (let next = this.#waiting[0]; next && next.need <= this.#free; next = this.#waiting[0]) {
      this.#waiting.shift();
      this.#free -= next.need;
      next.resolve();
    }
  }
}
