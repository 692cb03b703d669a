import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { affinityHeatmapSvg } from './heatmap-svg.js';
import { HEATMAP_BOUNDARY_COLOR, affinityHeatmapPng, heatmapColor } from './heatmap.js';

function pixel(png: PNG, x: number, y: number): number[] {
  const o = (y * png.width + x) * 4;
  return Array.from(png.data.subarray(o, o + 4));
}

describe('affinityHeatmapPng', () => {
  const A = [
    [1, 0.9, 0.5, 0.2],
    [0.9, 1, 0.6, 0.3],
    [0.5, 0.6, 1, 0.7],
    [0.2, 0.3, 0.7, 1],
  ];

  it('draws L·cell pixels with boundaries before each start > 0', async () => {
    const bytes = await affinityHeatmapPng(A, [0, 2], { cellSize: 10 });
    expect(bytes).toBeInstanceOf(Uint8Array);
    const png = PNG.sync.read(Buffer.from(bytes));
    expect([png.width, png.height]).toEqual([40, 40]);
    const red = [...HEATMAP_BOUNDARY_COLOR, 255];
    // Start 2 → boundary between cells 1 and 2 at x = 20 (and y = 20); 1 px wide at this cell size.
    expect(pixel(png, 20, 5)).toEqual(red);
    expect(pixel(png, 20, 35)).toEqual(red);
    expect(pixel(png, 19, 35)).not.toEqual(red);
    expect(pixel(png, 5, 20)).toEqual(red);
    // No line at start 0 or between cells 0 and 1.
    expect(pixel(png, 0, 5)).not.toEqual(red);
    expect(pixel(png, 10, 5)).not.toEqual(red);
    // Diagonal (maximum) is the bright end of the map, A[0][3] (minimum) the dark end.
    expect(pixel(png, 5, 5)).toEqual([...heatmapColor(1), 255]);
    expect(pixel(png, 35, 5)).toEqual([...heatmapColor(0), 255]);
    const [r, g, b] = heatmapColor(0);
    expect(r + g + b).toBeLessThan(200);
  });

  it('defaults to 24-pixel cells and validates its inputs', async () => {
    const png = PNG.sync.read(Buffer.from(await affinityHeatmapPng(A, [0, 1, 3])));
    expect(png.width).toBe(96);
    // 2 px lines at 24-pixel cells, straddling the edge at 24 (start 1) and 72 (start 3).
    for (const x of [23, 24, 71, 72]) expect(pixel(png, x, 50)).toEqual([...HEATMAP_BOUNDARY_COLOR, 255]);
    expect(pixel(png, 25, 50)).not.toEqual([...HEATMAP_BOUNDARY_COLOR, 255]);
    await expect(affinityHeatmapPng(A, [1, 2])).rejects.toThrow(/starts\[0\] must be 0/);
    await expect(affinityHeatmapPng(A, [0, 4])).rejects.toThrow(/starts\[1\] = 4/);
    await expect(affinityHeatmapPng(A, [0], { cellSize: 0 })).rejects.toThrow(/option "cellSize"/);
    await expect(affinityHeatmapPng([[1, 2]], [0])).rejects.toThrow(/row 0 has 2 columns/);
  });
});

describe('affinityHeatmapSvg', () => {
  const A = [
    [1, 0.9, 0.5, 0.2],
    [0.9, 1, 0.6, 0.3],
    [0.5, 0.6, 1, 0.7],
    [0.2, 0.3, 0.7, 1],
  ];

  it('draws every cell, labels both axes with block indices, a colour bar and the hierarchy boundaries', () => {
    const svg = affinityHeatmapSvg(A, [0, 2], { title: 'Layer affinity (τ = 0.9)' });
    expect(svg.startsWith('<svg ')).toBe(true);
    expect(svg.match(/<title>blocks \d, \d: /g)).toHaveLength(16);
    expect(svg).toContain('<title>blocks 0, 3: 0.20</title>');
    for (const i of [0, 1, 2, 3]) expect(svg).toContain(`text-anchor="end">${i}</text>`);
    expect(svg.match(/>block<\/text>/g)).toHaveLength(2);
    expect(svg).toContain('Layer affinity (τ = 0.9)');
    expect(svg).toContain('2 hierarchies (blocks sharing prompts)</text>');
    expect(svg).toContain('>starts 0, 2</text>');
    // Colour bar from the minimum to the maximum, labelled.
    for (const v of ['0.20', '0.60', '1.00']) expect(svg).toContain(`>${v}</text>`);
    expect(svg).toContain('>affinity</text>');
    // One dashed boundary per axis at start 2, and each hierarchy outlined on the diagonal.
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2);
    expect(svg.match(/fill="none" stroke="rgb\(255,0,0\)"/g)).toHaveLength(2);
  });

  it('refuses what the PNG heatmap refuses', () => {
    expect(() => affinityHeatmapSvg([[1, 2]], [0])).toThrow(/square/);
    expect(() => affinityHeatmapSvg(A, [1])).toThrow(/starts/);
  });
});
