/**
 * The timeline of a run (a Gantt chart) as inline SVG: a bar per step, frozen time hatched, fetch
 * bars split prefetched / demanded, the link's use over time under it, TTR and BTN lines, the
 * objectives, and the service level's curve when the report carries samples.
 *
 * Every bar is a `rect.bar` with `data-step`, `data-start` and `data-end` (seconds); the `svg`
 * carries `data-x0` and `data-px-per-s`, so a test can check where each bar is drawn.
 *
 * @module
 */
import type { Report, StepReport } from "../schedule/report.ts";
import { formatBytes, formatDuration } from "../runbook/units.ts";
import { esc } from "./escape.ts";
import { linkUse } from "./link_use.ts";
import { horizonOf, objectiveLimits, type Scale, ticks } from "./scale.ts";
import { type MaybeSl, slSeries } from "./service_level.ts";

/** What a timeline is drawn from. */
export interface TimelineInput {
  readonly report:
    & Pick<Report, "steps" | "ttr_s" | "btn_s" | "milestones" | "objectives" | "lower_bound">
    & MaybeSl;
  /** Seconds since the start, while the run goes on: running and frozen bars end here. */
  readonly now_s?: number | null;
  /** When a step now frozen froze (seconds), by step id. */
  readonly frozenSince?: Readonly<Record<string, number>>;
  /** When a fetch was demanded (seconds), by step id; else the split follows its bytes. */
  readonly demandedAt?: Readonly<Record<string, number>>;
  /** The seconds the axis spans (several timelines on one scale); default: the run's own. */
  readonly horizon_s?: number;
  /** Names the chart (for screen readers and the tooltip). */
  readonly title?: string;
}

/** Most steps drawn (a bar each); the link's use counts them all. */
export const MAX_TIMELINE_ROWS = 400;

const WIDTH = 960, LABEL = 190, RIGHT = 24, TOP = 34, ROW = 20, BAR = 13;
const LINK_H = 56, SL_H = 64, GAP = 26;

/** The timeline of `input` as an `<svg>` element. */
export function timelineSvg(input: TimelineInput): string {
  const { report } = input;
  const horizon = input.horizon_s ?? horizonOf(report, input.now_s);
  const scale: Scale = { x0: LABEL, pxPerS: (WIDTH - LABEL - RIGHT) / horizon, horizon };
  const shown = report.steps.slice(0, MAX_TIMELINE_ROWS);
  const more = report.steps.length - shown.length;
  const rowsH = (Math.max(1, shown.length) + (more > 0 ? 1 : 0)) * ROW;
  let y = TOP + rowsH + GAP;
  const link = linkPanel(report.steps, input.now_s, scale, y);
  y += LINK_H + GAP;
  const series = slSeries(report);
  const sl = series.length ? slPanel(series, scale, y) : "";
  if (series.length) y += SL_H + GAP;
  const height = y;
  const parts = [
    defs(),
    axis(scale, height),
    shown.map((s, i) => stepRow(s, i, scale, input)).join(""),
    more > 0
      ? `<text class="caption" x="${LABEL - 8}" y="${TOP + shown.length * ROW + 14}" ` +
        `text-anchor="end">${more} more steps not drawn</text>`
      : "",
    link,
    sl,
    lines(report, scale, height),
  ];
  const title = input.title ?? "timeline";
  return `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img" ` +
    `viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" ` +
    `data-x0="${scale.x0}" data-px-per-s="${scale.pxPerS}" data-horizon="${horizon}">` +
    `<title>${esc(title)}</title>${parts.join("")}</svg>`;
}

/** Where second `t` falls. */
function px(scale: Scale, t: number): number {
  return round(scale.x0 + Math.max(0, Math.min(t, scale.horizon)) * scale.pxPerS);
}

/** `map[key]` when it is the map's own number (keys are runbook text: "constructor" too). */
function own(map: Readonly<Record<string, number>> | undefined, key: string): number | undefined {
  const v = map && Object.hasOwn(map, key) ? map[key] : undefined;
  return typeof v === "number" ? v : undefined;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function defs(): string {
  return `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" ` +
    `patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>` +
    `<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>`;
}

function axis(scale: Scale, height: number): string {
  const out: string[] = [];
  for (const t of ticks(scale.horizon)) {
    const x = px(scale, t);
    out.push(
      `<line class="grid" x1="${x}" x2="${x}" y1="${TOP - 6}" y2="${height - 8}"/>` +
        `<text class="tick" x="${x}" y="${TOP - 10}" text-anchor="middle">${
          esc(formatDuration(t))
        }</text>`,
    );
  }
  return `<g class="axis">${out.join("")}</g>`;
}

/** One step: its label, its frozen time, and its bar(s). */
function stepRow(s: StepReport, i: number, scale: Scale, input: TimelineInput): string {
  const y = TOP + i * ROW, by = y + (ROW - BAR) / 2;
  const now = input.now_s ?? null;
  const label = s.id.length > 26 ? s.id.slice(0, 25) + "…" : s.id;
  const out = [
    `<text class="label" x="${LABEL - 8}" y="${y + ROW / 2 + 4}" text-anchor="end">` +
    `<title>${esc(s.id)}</title>${esc(label)}</text>`,
  ];
  const frozen = frozenSpan(s, now, own(input.frozenSince, s.id));
  if (frozen) {
    out.push(rect("frozen", frozen[0], frozen[1], by, scale, `${s.id}: frozen ${dur(s, frozen)}`));
  }
  const start = s.start_s;
  const end = s.end_s ?? (s.state === "running" ? now : null);
  if (start !== null && end !== null && end >= start) {
    out.push(bar(s, start, end, by, scale, own(input.demandedAt, s.id)));
  }
  if (s.milestone !== undefined && s.end_s !== null && s.state === "done") {
    const x = px(scale, s.end_s), m = by + BAR / 2;
    out.push(
      `<path class="milestone-mark" d="M${x} ${m - 6}l5 6l-5 6l-5 -6z">` +
        `<title>${esc(`milestone ${s.milestone}`)}</title></path>`,
    );
  }
  return `<g class="row state-${esc(s.state)}" data-row="${esc(s.id)}">${out.join("")}</g>`;
}

function dur(_s: StepReport, span: [number, number]): string {
  return formatDuration(span[1] - span[0]);
}

/** The time a step spent frozen: closed (before it started) or open (frozen now). */
function frozenSpan(
  s: StepReport,
  now: number | null,
  since: number | undefined,
): [number, number] | undefined {
  if (s.state === "frozen" && now !== null && since !== undefined && now > since) {
    return [since, now];
  }
  if (s.frozen_s > 0 && s.start_s !== null) return [s.start_s - s.frozen_s, s.start_s];
  return undefined;
}

function bar(
  s: StepReport,
  start: number,
  end: number,
  by: number,
  scale: Scale,
  demandedAt: number | undefined,
): string {
  const attrs = `data-step="${esc(s.id)}" data-start="${start}" data-end="${end}"`;
  const tip = `${s.id}: ${s.state}, ${formatDuration(start)} to ${formatDuration(end)}` +
    (s.bytes !== undefined ? `, ${formatBytes(s.bytes)}` : "");
  const x = px(scale, start), w = Math.max(1, round(px(scale, end) - x));
  const main = `<rect class="bar ${esc(s.kind)} ${esc(s.state)}" x="${x}" y="${by}" width="${w}" ` +
    `height="${BAR}" rx="2" ${attrs}><title>${esc(tip)}</title></rect>`;
  if (s.kind !== "fetch" || !s.bytes) return main;
  // A fetch: the prefetched part first, then the part a frozen step demanded.
  const pre = s.demanded ? Math.min(1, (s.prefetched_bytes ?? 0) / s.bytes) : 1;
  // The time a frozen step first waited for it, unless the report says nothing came before.
  const split = demandedAt !== undefined && demandedAt >= start && demandedAt <= end && pre > 0
    ? demandedAt
    : start + (end - start) * pre;
  return main +
    rect("prefetched", start, split, by, scale, `${s.id}: prefetched`) +
    rect("demanded", split, end, by, scale, `${s.id}: demanded`);
}

function rect(cls: string, from: number, to: number, y: number, scale: Scale, tip: string) {
  const x = px(scale, from), w = round(px(scale, to) - x);
  if (!(w > 0)) return "";
  return `<rect class="${cls}" x="${x}" y="${y}" width="${w}" height="${BAR}">` +
    `<title>${esc(tip)}</title></rect>`;
}

/** The link's use: each fetch at its average rate, stacked. */
function linkPanel(
  steps: readonly StepReport[],
  now: number | null | undefined,
  scale: Scale,
  y: number,
): string {
  const points = linkUse(steps, now);
  const peak = Math.max(0, ...points.map((p) => p.rate));
  const base = y + LINK_H;
  const caption = `<text class="panel-label" x="${LABEL - 8}" y="${y + 12}" text-anchor="end">` +
    `link</text><text class="caption" x="${LABEL - 8}" y="${y + 26}" text-anchor="end">` +
    `${peak > 0 ? esc(`peak ${formatBytes(peak)}/s`) : "idle"}</text>` +
    `<text class="caption" x="${LABEL - 8}" y="${y + 40}" text-anchor="end">` +
    `average rate of each fetch</text>`;
  let d = `M${px(scale, 0)} ${base}`;
  let level = base;
  for (const p of points) {
    const x = px(scale, p.t);
    const ny = round(base - (peak > 0 ? (p.rate / peak) * (LINK_H - 4) : 0));
    d += `L${x} ${level}L${x} ${ny}`;
    level = ny;
  }
  d += `L${px(scale, scale.horizon)} ${level}L${px(scale, scale.horizon)} ${base}Z`;
  return `<g class="link">${caption}<rect class="panel" x="${LABEL}" y="${y}" ` +
    `width="${WIDTH - LABEL - RIGHT}" height="${LINK_H}"/><path class="link-use" d="${d}"/></g>`;
}

/** The service level's curves (only when the report carries samples: see service_level.ts). */
function slPanel(series: ReturnType<typeof slSeries>, scale: Scale, y: number): string {
  const values = series.flatMap((s) => s.points.map((p) => p.value));
  const top = Math.max(...values, 0) || 1;
  const out = [
    `<text class="panel-label" x="${LABEL - 8}" y="${
      y + 12
    }" text-anchor="end">service level</text>`,
    `<rect class="panel" x="${LABEL}" y="${y}" width="${WIDTH - LABEL - RIGHT}" height="${SL_H}"/>`,
  ];
  series.forEach((s, k) => {
    const pts = s.points.map((p) =>
      `${px(scale, p.t)},${round(y + SL_H - (p.value / top) * (SL_H - 4))}`
    );
    out.push(
      `<polyline class="sl sl-${k % 4}" points="${pts.join(" ")}"><title>${
        esc(s.name)
      }</title></polyline>`,
      `<text class="caption" x="${LABEL - 8}" y="${y + 26 + 12 * k}" text-anchor="end">${
        esc(s.name)
      }</text>`,
    );
  });
  return `<g class="service-level">${out.join("")}</g>`;
}

/** A label beside a line at `x`: on its right, or on its left near the chart's right edge. */
function anchor(x: number): string {
  return x > WIDTH - RIGHT - 90 ? `x="${x - 3}" text-anchor="end"` : `x="${x + 3}"`;
}

/** TTR, BTN and the objectives, across the whole chart. */
function lines(report: TimelineInput["report"], scale: Scale, height: number): string {
  const out: string[] = [];
  const line = (cls: string, t: number, label: string, row: number) => {
    if (!(t >= 0) || t > scale.horizon + 1e-9) return;
    const x = px(scale, t);
    out.push(
      `<line class="mark ${cls}" x1="${x}" x2="${x}" y1="${TOP - 4}" y2="${height - 8}"/>` +
        `<text class="mark-label ${cls}" ${anchor(x)} y="${height - 10 - 12 * row}">${
          esc(label)
        }</text>`,
    );
  };
  if (report.ttr_s !== null) line("ttr", report.ttr_s, `TTR ${formatDuration(report.ttr_s)}`, 1);
  if (report.btn_s !== null) line("btn", report.btn_s, `BTN ${formatDuration(report.btn_s)}`, 0);
  const o = report.objectives;
  if (o.rto_s !== undefined) line("objective", o.rto_s, `rto ${formatDuration(o.rto_s)}`, 3);
  if (o.btn_s !== undefined) line("objective", o.btn_s, `btn ${formatDuration(o.btn_s)}`, 2);
  let k = 4;
  for (const [name, limit] of Object.entries(o.milestones)) {
    line("objective", limit, `${name} ${formatDuration(limit)}`, k++);
  }
  const off = objectiveLimits(report).filter((t) => t > scale.horizon + 1e-9);
  if (off.length) {
    out.push(
      `<text class="caption" x="${WIDTH - RIGHT}" y="${TOP - 22}" text-anchor="end">${
        esc(`objectives beyond the chart: ${off.map((t) => formatDuration(t)).join(", ")}`)
      }</text>`,
    );
  }
  return `<g class="marks">${out.join("")}</g>`;
}
