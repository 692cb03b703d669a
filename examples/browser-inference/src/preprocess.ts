/** The one preprocessing both the page and Node use: 8-bit gray → [-1, 1] (MNIST-style mean 0.5, std 0.5). */
export const IMAGE_SIZE = 28;

export function toInput(gray: ArrayLike<number>): Float32Array {
  const out = new Float32Array(gray.length);
  for (let i = 0; i < gray.length; i++) out[i] = ((gray[i] as number) / 255 - 0.5) / 0.5;
  return out;
}
