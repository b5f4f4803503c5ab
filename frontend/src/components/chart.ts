// A Chart.js chart as an element: set .config, and updates redraw the same chart.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from "chart.js";

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);

export class EvChart extends HTMLElement {
  private chart: Chart | null = null;
  private chartType: string | null = null;
  private canvas: HTMLCanvasElement | null = null;
  private _config: ChartConfiguration | null = null;

  set config(config: ChartConfiguration | null) {
    this._config = config;
    this.draw();
  }

  get config(): ChartConfiguration | null {
    return this._config;
  }

  connectedCallback(): void {
    if (!this.canvas) {
      const box = document.createElement("div");
      box.className = "chart-box";
      this.canvas = document.createElement("canvas");
      this.canvas.setAttribute("role", "img");
      this.canvas.setAttribute("aria-label", this.getAttribute("label") ?? "chart");
      box.append(this.canvas);
      this.append(box);
    }
    this.draw();
  }

  disconnectedCallback(): void {
    this.chart?.destroy();
    this.chart = null;
  }

  private draw(): void {
    if (!this.canvas || !this.isConnected || !this._config) return;
    const type = (this._config as { type?: string }).type ?? "line";
    if (this.chart && this.chartType === type) {
      this.chart.data = this._config.data;
      if (this._config.options) this.chart.options = this._config.options;
      this.chart.update("none");
      return;
    }
    this.chart?.destroy();
    this.chart = new Chart(this.canvas, this._config);
    this.chartType = type;
  }
}

customElements.define("ev-chart", EvChart);

declare global {
  interface HTMLElementTagNameMap {
    "ev-chart": EvChart;
  }
}

export const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

export function timeTick(value: number | string): string {
  const date = new Date(Number(value));
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}
