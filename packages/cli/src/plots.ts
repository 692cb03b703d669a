import type { SvgImage } from '@peftjs/core';
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

/** An SVG document rasterised to PNG (sharp, librsvg). */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

/** A method's file or figure contents as bytes to write: an `SvgImage` becomes PNG, everything else is kept. */
export async function methodFileData(data: Uint8Array | string | SvgImage): Promise<Uint8Array | string> {
  return typeof data === 'object' && 'svg' in data ? svgToPng(data.svg) : data;
}

/** One point of a line chart. */
export interface SeriesPoint {
  /** Horizontal position (e.g. the epoch). */
  readonly x: number;
  /** Vertical value (e.g. the loss or an accuracy). */
  readonly y: number;
  /** Name of the line the point belongs to (its legend entry). */
  readonly series: string;
  /** A second grouping drawn as the line's dash pattern (e.g. the loss term), with its own legend. */
  readonly dash?: string;
}

/** A line chart of one or more named series; `integerX` ticks whole numbers only (epochs). */
export function lineChart(
  points: readonly SeriesPoint[],
  axes: { x: string; y: string; title: string; subtitle?: string; integerX?: boolean },
): TopLevelSpec {
  const dashed = points.some((p) => p.dash !== undefined);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: axes.subtitle ? { text: axes.title, subtitle: axes.subtitle } : axes.title,
    width: 520,
    height: 260,
    background: 'white',
    data: { values: points.map((p) => ({ ...p })) },
    // Points would turn the dash legend into dots: dashed charts draw lines only.
    mark: { type: 'line', point: !dashed && points.length < 60 },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: axes.x,
        ...(axes.integerX ? { axis: { tickMinStep: 1, format: 'd' } } : {}),
      },
      y: { field: 'y', type: 'quantitative', title: axes.y },
      color: { field: 'series', type: 'nominal', title: null },
      ...(dashed ? { strokeDash: { field: 'dash', type: 'nominal', title: null } } : {}),
    },
  };
}
