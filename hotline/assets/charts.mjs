/* The pages' charts, drawn by Apache ECharts from the figures the server wrote beside them.

   Each chart is a <figure hidden> holding a <div class="chart-canvas" data-chart="…">: the JSON
   is `hotline.charts.Chart.spec()` (kind, labels, series with their colours, percent or count,
   an optional target line, the axis names). The page's table holds the same figures, so a
   reader without JavaScript (or when this bundle is missing) reads the table and never sees
   an empty box: a figure is shown only once its chart is drawn.

   `make install` bundles this file with the parts of ECharts it imports (npm's `echarts`,
   pinned in package.json) into hotline/static/charts.js with esbuild; nothing is fetched from
   another site, so the pages' Content-Security-Policy needs only `script-src 'self'`.
   The canvas renderer and the rich-text tooltip draw everything on the canvas: no inline
   style attribute or HTML is written, which that policy would refuse. */

import { BarChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, MarkLineComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, CanvasRenderer]);

const TARGET_COLOUR = "#b3261e";
// Narrower than this, a chart is on a phone: labels turn and shrink (ECharts' media queries).
const PHONE_WIDTH = 480;
// Value labels on columns stay legible up to this many columns.
const MAX_LABELLED_COLUMNS = 16;

function percentText(value) {
  return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + "%";
}

function countText(value) {
  return value === null || value === undefined ? "—" : String(Math.round(value));
}

/* The value axis: from zero; rates to 100%; and always reaching the target line, so a good
   period still shows its distance from it. */
function valueAxis(spec, name) {
  const target = spec.target ? spec.target.value : 0;
  return {
    type: "value",
    min: 0,
    max: spec.percent ? 1 : (extent) => Math.max(extent.max, target) || 1,
    minInterval: spec.percent ? undefined : 1,
    name,
    nameLocation: "middle",
    nameGap: spec.kind === "rows" ? 28 : 44,
    axisLabel: { formatter: spec.percent ? (value) => Math.round(value * 100) + "%" : undefined },
  };
}

function categoryAxis(spec, name) {
  const rows = spec.kind === "rows";
  return {
    type: "category",
    data: spec.labels,
    // Rows read top to bottom in the order given, as the table does.
    inverse: rows,
    name: rows ? undefined : name,
    nameLocation: "middle",
    nameGap: 28,
    axisTick: { alignWithLabel: true },
    axisLabel: rows ? { width: 150, overflow: "truncate" } : { hideOverlap: true },
  };
}

function series(spec, text) {
  const kind = spec.kind;
  return spec.series.map((line, index) => {
    const drawn = {
      name: line.name,
      type: kind === "lines" ? "line" : "bar",
      data: line.values,
      color: line.color,
      // A period without cases is a gap, not a zero.
      connectNulls: false,
      symbolSize: 7,
      barMaxWidth: 28,
    };
    if (kind === "rows") {
      drawn.label = { show: true, position: "right", formatter: (item) => text(item.value) };
    } else if (kind === "columns" && spec.labels.length <= MAX_LABELLED_COLUMNS) {
      drawn.label = { show: true, position: "top", formatter: (item) => text(item.value) };
    }
    if (index === 0 && spec.target) {
      const at = kind === "rows" ? { xAxis: spec.target.value } : { yAxis: spec.target.value };
      drawn.markLine = {
        symbol: "none",
        silent: true,
        lineStyle: { type: "dashed", color: TARGET_COLOUR, width: 1.5 },
        label: { formatter: spec.target.name, position: "insideEndTop", color: TARGET_COLOUR },
        data: [at],
      };
    }
    return drawn;
  });
}

function option(spec) {
  const text = spec.percent ? percentText : countText;
  const rows = spec.kind === "rows";
  const withLegend = spec.series.length > 1;
  const categories = categoryAxis(spec, spec.x_label);
  const values = valueAxis(spec, rows ? spec.x_label : spec.y_label);
  return {
    baseOption: {
      animation: false,
      textStyle: { fontSize: 12 },
      legend: withLegend ? { type: "scroll", top: 0, left: 0 } : undefined,
      grid: {
        top: withLegend ? 40 : 16,
        left: rows ? 8 : 56,
        right: rows ? 56 : 16,
        bottom: rows ? 40 : 48,
        outerBoundsMode: "same",
        outerBoundsContain: "axisLabel",
      },
      tooltip: { trigger: "axis", renderMode: "richText", valueFormatter: text },
      xAxis: rows ? values : categories,
      yAxis: rows ? categories : values,
      series: series(spec, text),
    },
    media: [
      {
        query: { maxWidth: PHONE_WIDTH },
        option: rows
          ? { yAxis: { axisLabel: { width: 84, fontSize: 11 } } }
          : { xAxis: { axisLabel: { rotate: 40, fontSize: 11 } }, grid: { bottom: 64 } },
      },
    ],
  };
}

/* A rows chart grows with its rows; the others keep the stylesheet's height. */
function rowsHeight(spec) {
  const perRow = spec.series.length * 12 + 12;
  return Math.max(160, spec.labels.length * perRow + 72) + "px";
}

function draw(canvas) {
  const spec = JSON.parse(canvas.dataset.chart);
  if (spec.kind === "rows") {
    canvas.style.height = rowsHeight(spec);
  }
  const figure = canvas.closest("figure");
  // Shown before drawing: ECharts measures the box it draws in.
  figure.hidden = false;
  const chart = echarts.init(canvas, null, { renderer: "canvas" });
  chart.setOption(option(spec));
  new ResizeObserver(() => chart.resize()).observe(canvas);
  canvas.dataset.drawn = "true";
}

function drawAll() {
  for (const canvas of document.querySelectorAll(".chart-canvas[data-chart]")) {
    try {
      draw(canvas);
    } catch (error) {
      // The table below holds the figures: one chart that fails hides itself again.
      canvas.closest("figure").hidden = true;
      console.error("chart not drawn", canvas.id, error);
    }
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", drawAll);
} else {
  drawAll();
}
