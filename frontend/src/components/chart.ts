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
import { fmtNumber } from "../i18n.js";

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

/** The axes of a power chart: time from start to end (ms) across, kW from zero up. */
export function powerScales(start: number, end: number) {
  return {
    x: { type: "linear" as const, min: start, max: end, ticks: { callback: timeTick, maxTicksLimit: 6 } },
    y: {
      beginAtZero: true,
      title: { display: true, text: "kW" },
      ticks: { callback: (value: number | string) => fmtNumber(Number(value), 2) },
    },
  };
}

/** A dashed line at an uptime target across every label. */
export function targetLine(label: string, labels: unknown[], target: number) {
  return {
    label,
    data: labels.map(() => target),
    borderColor: "#d97706",
    borderDash: [6, 4],
    pointRadius: 0,
    borderWidth: 2,
  };
}

/** Where an uptime chart's axis starts: a little below the target and the lowest value. */
export function uptimeAxisMin(target: number, values: number[]): number {
  return Math.max(0, Math.floor(Math.min(target - 3, ...values)) - 1);
}
