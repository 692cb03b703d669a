import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Renders a Vega-Lite spec to PNG in Node: Vega → SVG (no browser, no canvas) → sharp rasterises it. */
export async function renderPng(spec: TopLevelSpec): Promise<Uint8Array> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

/** One point of a line chart. */
export interface SeriesPoint {
  /** Horizontal position (e.g. the epoch). */
  readonly x: number;
  /** Vertical value (e.g. the loss or an accuracy). */
  readonly y: number;
  /** Name of the line the point belongs to (its legend entry). */
  readonly series: string;
}

/** A line chart of one or more named series. */
export function lineChart(
  points: readonly SeriesPoint[],
  axes: { x: string; y: string; title: string },
): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: axes.title,
    width: 520,
    height: 260,
    background: 'white',
    data: { values: points.map((p) => ({ ...p })) },
    mark: { type: 'line', point: points.length < 60 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: axes.x },
      y: { field: 'y', type: 'quantitative', title: axes.y },
      color: { field: 'series', type: 'nominal', title: null },
    },
  };
}
