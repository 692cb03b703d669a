import { HEATMAP_BOUNDARY_COLOR, heatmapColor } from './heatmap.js';
import { requireSquareMatrix, requireStarts } from './validate.js';

/** Options of `affinityHeatmapSvg`. */
export interface HeatmapSvgOptions {
  /** Title line above the matrix; default `Layer affinity`. */
  title?: string;
}

const escapeXml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const rgb = (c: readonly [number, number, number]) => `rgb(${c[0]},${c[1]},${c[2]})`;

/** Two significant decimals of an affinity (cosine) value, more when the range is narrow. */
function formatter(low: number, high: number): (v: number) => string {
  const spread = high - low;
  const digits = spread > 0 ? Math.min(4, Math.max(2, Math.ceil(-Math.log10(spread)) + 1)) : 2;
  return (v) => v.toFixed(digits);
}

/** Every `step`-th block index is labelled so that labels never overlap. */
const labelStep = (cell: number) => Math.max(1, Math.ceil(14 / cell));

/**
 * The affinity matrix as a figure a person can read (SVG text, no rasteriser needed, so it also runs in browsers):
 * cell (i, j) is the mean cosine similarity between the features of block i and block j, on a viridis-like scale;
 * both axes are labelled with block indices, a colour bar gives the value scale, and red lines mark the hierarchy
 * boundaries (before each start > 0), with each hierarchy outlined on the diagonal.
 */
export function affinityHeatmapSvg(
  affinity: number[][],
  starts: number[],
  options: HeatmapSvgOptions = {},
): string {
  const layers = requireSquareMatrix('affinity', affinity);
  const bounds = requireStarts('starts', starts, layers);
  const cell = Math.max(8, Math.min(32, Math.floor(384 / layers)));
  const size = layers * cell;
  const [left, top, barGap, barWidth] = [64, 52, 24, 16];
  const width = left + size + barGap + barWidth + 64;
  const height = top + size + 104;
  const values = affinity.flat();
  const low = Math.min(...values);
  const high = Math.max(...values);
  const format = formatter(low, high);
  const t = (v: number) => (high > low ? (v - low) / (high - low) : 0.5);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left + size / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title ?? 'Layer affinity')}</text>`,
    `<text x="${left + size / 2}" y="40" text-anchor="middle" fill="#444">mean cosine similarity of the blocks' outputs</text>`,
  ];
  for (let i = 0; i < layers; i++) {
    for (let j = 0; j < layers; j++) {
      const v = (affinity[i] as number[])[j] as number;
      out.push(
        `<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="${rgb(heatmapColor(t(v)))}"><title>blocks ${i}, ${j}: ${format(v)}</title></rect>`,
      );
    }
  }
  const step = labelStep(cell);
  for (let i = 0; i < layers; i += step) {
    const centre = i * cell + cell / 2;
    out.push(
      `<text x="${left - 6}" y="${top + centre + 4}" text-anchor="end">${i}</text>`,
      `<text x="${left + centre}" y="${top + size + 16}" text-anchor="middle">${i}</text>`,
    );
  }
  out.push(
    `<text x="${left + size / 2}" y="${top + size + 34}" text-anchor="middle">block</text>`,
    `<text transform="translate(${left - 40},${top + size / 2}) rotate(-90)" text-anchor="middle">block</text>`,
  );
  const red = rgb(HEATMAP_BOUNDARY_COLOR);
  const ends = [...bounds.slice(1), layers];
  bounds.forEach((start, g) => {
    const span = ((ends[g] as number) - start) * cell;
    out.push(
      `<rect x="${left + start * cell}" y="${top + start * cell}" width="${span}" height="${span}" fill="none" stroke="${red}" stroke-width="2"/>`,
    );
    if (start > 0) {
      const at = start * cell;
      out.push(
        `<line x1="${left + at}" y1="${top}" x2="${left + at}" y2="${top + size}" stroke="${red}" stroke-width="2" stroke-dasharray="4 3"/>`,
        `<line x1="${left}" y1="${top + at}" x2="${left + size}" y2="${top + at}" stroke="${red}" stroke-width="2" stroke-dasharray="4 3"/>`,
      );
    }
  });
  const legendY = top + size + 58;
  out.push(
    `<line x1="${left}" y1="${legendY - 4}" x2="${left + 24}" y2="${legendY - 4}" stroke="${red}" stroke-width="2"/>`,
    `<text x="${left + 30}" y="${legendY}">${bounds.length} ${bounds.length === 1 ? 'hierarchy' : 'hierarchies'} (blocks sharing prompts)</text>`,
    `<text x="${left + 30}" y="${legendY + 16}">starts ${bounds.join(', ')}</text>`,
  );
  const barX = left + size + barGap;
  const stops = Array.from({ length: 11 }, (_, s) => s / 10);
  out.push(
    '<defs><linearGradient id="affinity-scale" x1="0" y1="1" x2="0" y2="0">',
    ...stops.map((s) => `<stop offset="${s}" stop-color="${rgb(heatmapColor(s))}"/>`),
    '</linearGradient></defs>',
    `<rect x="${barX}" y="${top}" width="${barWidth}" height="${size}" fill="url(#affinity-scale)" stroke="#333" stroke-width="0.5"/>`,
  );
  for (const s of [0, 0.5, 1]) {
    const y = top + size - s * size;
    const value = high > low ? low + s * (high - low) : low;
    out.push(
      `<line x1="${barX + barWidth}" y1="${y}" x2="${barX + barWidth + 4}" y2="${y}" stroke="#333"/>`,
      `<text x="${barX + barWidth + 7}" y="${y + 4}">${format(value)}</text>`,
    );
  }
  out.push(
    `<text transform="translate(${barX + barWidth + 52},${top + size / 2}) rotate(90)" text-anchor="middle">affinity</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
