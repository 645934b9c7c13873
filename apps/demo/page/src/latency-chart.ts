const svgNamespace = 'http://www.w3.org/2000/svg';

/** A transport in the chart: its key, label and colour. */
export interface Series {
  key: string;
  label: string;
  color: string;
}

/** The `q` quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(svgNamespace, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** p50 and p99 of publish-to-receipt latency per transport over a sliding window, as horizontal bars. */
export class LatencyChart {
  readonly #root: SVGSVGElement;
  readonly #series: readonly Series[];
  readonly #windowMs: number;
  readonly #samples = new Map<string, { at: number; ms: number }[]>();
  #pending = false;

  /** @param windowMs how far back samples count. @default 60000 */
  constructor(root: SVGSVGElement, series: readonly Series[], windowMs = 60_000) {
    this.#root = root;
    this.#series = series;
    this.#windowMs = windowMs;
    for (const { key } of series) this.#samples.set(key, []);
    this.render();
    setInterval(() => this.render(), 1000);
  }

  add(key: string, latencyMs: number, at = Date.now()): void {
    this.#samples.get(key)?.push({ at, ms: latencyMs });
    if (this.#pending) return;
    this.#pending = true;
    requestAnimationFrame(() => {
      this.#pending = false;
      this.render();
    });
  }

  render(now = Date.now()): void {
    const width = Math.max(320, this.#root.clientWidth || 480);
    const rowHeight = 44;
    const labelWidth = 78;
    const barSpace = width - labelWidth - 200;
    const stats = this.#series.map((series) => {
      const kept = (this.#samples.get(series.key) ?? []).filter((sample) => now - sample.at <= this.#windowMs);
      this.#samples.set(series.key, kept);
      const sorted = kept.map((sample) => sample.ms).sort((a, b) => a - b);
      return { series, n: sorted.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
    });
    const scale = Math.max(10, ...stats.map((stat) => stat.p99));
    const nodes: SVGElement[] = [];
    stats.forEach(({ series, n, p50, p99 }, row) => {
      const y = 8 + row * rowHeight;
      nodes.push(svg('text', { x: 0, y: y + 17, class: 'label' }, series.label));
      nodes.push(svg('rect', { x: labelWidth, y: y + 4, width: barSpace, height: 26, rx: 3, fill: '#f1f3f6' }));
      if (n > 0) {
        nodes.push(svg('rect', { x: labelWidth, y: y + 4, width: Math.max(2, (p99 / scale) * barSpace), height: 26, rx: 3, fill: series.color, 'fill-opacity': 0.35 }));
        nodes.push(svg('rect', { x: labelWidth, y: y + 4, width: Math.max(2, (p50 / scale) * barSpace), height: 26, rx: 3, fill: series.color }));
      }
      const text = n > 0 ? `p50 ${p50.toFixed(0)} ms  p99 ${p99.toFixed(0)} ms  n=${n}` : 'no events yet';
      nodes.push(svg('text', { x: labelWidth + barSpace + 8, y: y + 21, 'data-series': series.key }, text));
    });
    this.#root.setAttribute('viewBox', `0 0 ${width} ${8 + this.#series.length * rowHeight}`);
    this.#root.replaceChildren(...nodes);
  }
}
