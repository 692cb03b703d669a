/** A small live chart on a canvas: training loss per step (left axis) and validation accuracy per epoch (right). */
export class TrainingChart {
  private losses: { x: number; y: number }[] = [];
  private accuracies: { x: number; y: number }[] = [];
  private maxX = 1;

  constructor(private readonly canvas: HTMLCanvasElement) {
    this.draw();
  }

  /** Starts a new run of `totalSteps` optimizer steps. */
  reset(totalSteps: number): void {
    this.losses = [];
    this.accuracies = [];
    this.maxX = Math.max(1, totalSteps);
    this.draw();
  }

  /** Adds the loss of global step `step`. */
  addLoss(step: number, loss: number): void {
    this.losses.push({ x: step + 1, y: loss });
    this.draw();
  }

  /** Adds the validation accuracy after `step` steps (the end of an epoch). */
  addAccuracy(step: number, top1: number): void {
    this.accuracies.push({ x: step, y: top1 });
    this.draw();
  }

  private draw(): void {
    const context = this.canvas.getContext('2d');
    if (!context) return;
    const { width, height } = this.canvas;
    const pad = { left: 44, right: 44, top: 12, bottom: 26 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    context.clearRect(0, 0, width, height);
    context.font = '11px system-ui, sans-serif';
    context.strokeStyle = '#bbb';
    context.strokeRect(pad.left, pad.top, plotW, plotH);
    const maxLoss = Math.max(1e-6, ...this.losses.map((p) => p.y));
    const px = (x: number) => pad.left + (x / this.maxX) * plotW;
    const line = (points: { x: number; y: number }[], scale: number, colour: string) => {
      context.strokeStyle = colour;
      context.fillStyle = colour;
      context.beginPath();
      points.forEach((p, i) => {
        const y = pad.top + plotH - (p.y / scale) * plotH;
        if (i === 0) context.moveTo(px(p.x), y);
        else context.lineTo(px(p.x), y);
      });
      context.stroke();
      for (const p of points.length < 40 ? points : []) {
        context.fillRect(px(p.x) - 2, pad.top + plotH - (p.y / scale) * plotH - 2, 4, 4);
      }
    };
    line(this.losses, maxLoss, '#c0392b');
    line(this.accuracies, 1, '#2471a3');
    context.fillStyle = '#c0392b';
    context.textAlign = 'right';
    context.fillText(maxLoss.toFixed(2), pad.left - 4, pad.top + 10);
    context.fillText('loss', pad.left - 4, pad.top + plotH / 2);
    context.fillText('0', pad.left - 4, pad.top + plotH);
    context.fillStyle = '#2471a3';
    context.textAlign = 'left';
    context.fillText('100 %', width - pad.right + 4, pad.top + 10);
    context.fillText('val acc', width - pad.right + 4, pad.top + plotH / 2);
    context.fillText('0 %', width - pad.right + 4, pad.top + plotH);
    context.fillStyle = '#555';
    context.textAlign = 'center';
    context.fillText(`optimizer steps (${this.maxX})`, pad.left + plotW / 2, height - 6);
  }
}
