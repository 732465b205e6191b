/**
 * The pages' stylesheet, inlined in every page (no external fonts or files: a page works with
 * the network cut off, and a saved report is one self-contained file).
 *
 * @module
 */

/** The CSS of every page. */
export const STYLE = `
:root { color-scheme: light; --fg: #1d232b; --muted: #5c6773; --line: #d8dee4; --bg: #fff;
  --done: #2f855a; --running: #3182ce; --frozen: #805ad5; --failed: #c53030; --pending: #a0aec0;
  --skipped: #b7c0cc; --cancelled: #718096; --prefetched: #90cdf4; --demanded: #dd6b20; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); }
header.top { display: flex; gap: 12px; align-items: baseline; padding: 12px 20px;
  border-bottom: 1px solid var(--line); }
header.top h1 { font-size: 18px; margin: 0; }
header.top .conn { margin-left: auto; color: var(--muted); font-size: 12px; }
main { padding: 8px 20px 32px; }
section.run { margin-bottom: 36px; }
h2 { font-size: 17px; margin: 16px 0 6px; }
h3 { font-size: 14px; margin: 14px 0 4px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 6px 0; }
.facts div { min-width: 90px; }
.facts dt { color: var(--muted); font-size: 12px; }
.facts dd { margin: 0; font-size: 16px; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; }
td.detail { color: var(--muted); max-width: 460px; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 9px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--pending); }
.badge.met, .badge.done { background: var(--done); }
.badge.running { background: var(--running); }
.badge.frozen { background: var(--frozen); }
.badge.missed, .badge.failed { background: var(--failed); }
.badge.cancelled, .badge.interrupted { background: var(--cancelled); }
.badge.skipped { background: var(--skipped); }
.late { color: var(--failed); font-weight: 600; }
.muted { color: var(--muted); }
.chart { overflow-x: auto; }
svg.timeline { max-width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg .grid { stroke: #eef1f4; }
svg .tick, svg .caption { fill: var(--muted); }
svg .label { fill: var(--fg); }
svg .panel-label { fill: var(--fg); font-weight: 600; }
svg .panel { fill: none; stroke: var(--line); }
svg .bar { fill: var(--pending); }
svg .bar.done { fill: var(--done); }
svg .bar.running { fill: var(--running); }
svg .bar.failed { fill: var(--failed); }
svg .bar.cancelled { fill: var(--cancelled); }
svg .bar.skipped { fill: var(--skipped); }
svg .prefetched { fill: var(--prefetched); }
svg .demanded { fill: var(--demanded); }
svg .frozen { fill: url(#hatch); stroke: var(--frozen); stroke-width: .6; }
svg .hatch-bg { fill: #f3efff; }
svg .hatch-line { stroke: var(--frozen); stroke-width: 2; }
svg .milestone-mark { fill: #fff; stroke: var(--fg); stroke-width: 1.2; }
svg .link-use { fill: #bee3f8; stroke: var(--running); stroke-width: 1; }
svg .mark { stroke-width: 1.5; }
svg .mark.ttr { stroke: var(--done); }
svg .mark.btn { stroke: var(--fg); }
svg .mark.objective { stroke: var(--failed); stroke-dasharray: 5 4; }
svg .mark-label { font-weight: 600; }
svg .mark-label.ttr { fill: var(--done); }
svg .mark-label.objective { fill: var(--failed); }
svg .sl { fill: none; stroke-width: 1.5; }
svg .sl-0 { stroke: #2b6cb0; } svg .sl-1 { stroke: #c05621; }
svg .sl-2 { stroke: #2f855a; } svg .sl-3 { stroke: #6b46c1; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; color: var(--muted);
  margin: 4px 0 0 0; padding: 0; list-style: none; }
.legend i { display: inline-block; width: 18px; height: 10px; margin-right: 5px;
  vertical-align: -1px; border-radius: 2px; }
footer { color: var(--muted); font-size: 12px; padding: 0 20px 20px; }
`;
