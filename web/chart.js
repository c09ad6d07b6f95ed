// The canvas chart of a training run: training loss (line) and evaluation loss (dots) on the
// left axis, one more series on the right axis (learning rate, grad norm or tokens/s), against
// the epoch as Training PRO draws it, or the optimizer step. A toolbar switches the x axis, the
// right series, smoothing (TensorBoard's debiased exponential moving average) and a log loss
// axis; ticks are round numbers (1, 2, 5 × 10^k); hovering shows a record's values; saved
// checkpoints and logged events (the switch to sequential batch order) are marked. It redraws
// at most once per animation frame and thins long runs to about two points per pixel column.
// canvas.dataset holds what was drawn (points, x, log, smooth, right, marks, ticks, titles).
// setSeries() overlays several runs instead (comparing runs): each run's loss line and eval
// dots in its own colour, named in the legend, with the same axes, toggles and tooltip.
'use strict';

// Every colour drawn for data has at least 3:1 contrast against CHART_BG (WCAG 1.4.11).
const CHART_BG = '#ffffff';
const CHART_COLORS = {
  loss: '#1f4fb4', eval_loss: '#b54708', lr: '#067647', grad_norm: '#7a2e9a', tokens_per_s: '#475467',
  checkpoint: '#b42318', event: '#344054', axis: '#475467',
};
const RIGHT_SERIES = {
  lr: 'learning rate', grad_norm: 'grad norm (before clipping)', tokens_per_s: 'tokens/s', none: '',
};
const SMOOTHING = 0.6;
// Runs overlaid on one chart, in this order; each has at least 3:1 contrast against CHART_BG.
const OVERLAY_COLORS = ['#1f4fb4', '#b54708', '#067647', '#7a2e9a', '#b42318', '#0e7090', '#475467', '#a15c07'];

class LossChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.records = [];
    this.series = null;  // [{name, records, color}] when runs are overlaid
    this.marks = { checkpoints: [], events: [] };
    this.opts = { x: 'epoch', right: 'lr', smooth: 0, log: false };
    this.pending = false;
    this.view = null;  // the last draw's scales, for hovering
    this.toolbar();
    new ResizeObserver(() => this.schedule()).observe(canvas);
  }

  // Controls above the canvas and a tooltip over it; ids are prefixed with the canvas id.
  toolbar() {
    const c = this.canvas, id = c.id;
    const box = el('div', { class: 'chart-box' });
    c.replaceWith(box);
    const sel = (name, options, title) => el('select', { id: `${id}-${name}`, 'aria-label': title, title },
      options.map(([v, t]) => el('option', { value: v, text: t })));
    const xSel = sel('x', [['epoch', 'x: epoch'], ['step', 'x: step']], 'x axis');
    const rSel = sel('right', Object.entries(RIGHT_SERIES).map(([k, t]) => [k, k === 'none' ? 'right: none' : `right: ${t}`]),
      'right axis series');
    const smooth = el('input', { type: 'checkbox', id: `${id}-smooth` });
    const log = el('input', { type: 'checkbox', id: `${id}-log` });
    const bar = el('div', { class: 'chart-tools' }, [xSel, rSel,
      el('label', {}, [smooth, ' smoothing']), el('label', {}, [log, ' log loss axis'])]);
    this.tip = el('div', { class: 'chart-tip', id: `${id}-tip`, hidden: true, role: 'status' });
    box.append(bar, c, this.tip);
    xSel.addEventListener('change', () => { this.opts.x = xSel.value; this.schedule(); });
    rSel.addEventListener('change', () => { this.opts.right = rSel.value; this.schedule(); });
    smooth.addEventListener('change', () => { this.opts.smooth = smooth.checked ? SMOOTHING : 0; this.schedule(); });
    log.addEventListener('change', () => { this.opts.log = log.checked; this.schedule(); });
    c.addEventListener('mousemove', e => this.hover(e));
    c.addEventListener('mouseleave', () => { this.tip.hidden = true; });
  }

  setRecords(records, marks) {
    this.series = null;
    this.records = records.slice();
    this.marks = { checkpoints: (marks && marks.checkpoints || []).slice(), events: (marks && marks.events || []).slice() };
    this.schedule();
  }
  add(record) {
    const last = this.records[this.records.length - 1];
    if (last && last.step === record.step) Object.assign(last, record);  // an eval joins its step
    else this.records.push(record);
    this.schedule();
  }
  // Overlaid runs: [{name, records}], coloured in order (at most OVERLAY_COLORS.length).
  setSeries(list) {
    this.series = list.slice(0, OVERLAY_COLORS.length).map((r, i) => ({ name: r.name, records: r.records.slice(),
                                                                         color: OVERLAY_COLORS[i] }));
    this.records = [];
    this.marks = { checkpoints: [], events: [] };
    this.schedule();
  }
  addCheckpoint(step) { this.marks.checkpoints.push(step); this.schedule(); }
  addEvent(e) { this.marks.events.push(e); this.schedule(); }
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  xOf(r) { return this.opts.x === 'epoch' ? r.epoch : r.step; }

  // The x value of an optimizer step: its record's epoch in epoch mode (the first at or after it).
  xOfStep(step) {
    if (this.opts.x === 'step') return step;
    const rs = this.records;
    let lo = 0, hi = rs.length - 1;
    if (hi < 0) return null;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (rs[mid].step < step) lo = mid + 1; else hi = mid; }
    return rs[lo].epoch;
  }

  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = CHART_BG;
    g.fillRect(0, 0, w, h);
    g.font = '11px system-ui, sans-serif';
    const o = this.opts;
    Object.assign(c.dataset, { points: String(this.records.length), x: o.x, log: String(o.log), smooth: String(o.smooth),
                               right: o.right });
    if (this.series) { this.drawOverlay(g, w, h); return; }
    const box = { l: 64, r: w - (o.right === 'none' ? 16 : 70), t: 24, b: h - 40 };
    this.view = null;
    if (!this.records.length) {
      g.fillStyle = CHART_COLORS.axis;
      g.fillText('loss and learning rate appear here once training starts', box.l, h / 2);
      c.dataset.marks = '0';
      return;
    }
    const fin = v => v !== null && v !== undefined && isFinite(v) && (!o.log || v > 0);
    const rs = this.records;
    const xv = rs.map(r => this.xOf(r)).filter(v => v !== null && v !== undefined && isFinite(v));
    const xt = niceTicks(Math.min(xv[0], xv[xv.length - 1]), Math.max(xv[0], xv[xv.length - 1]));
    const lossVals = [];
    for (const r of rs) { if (fin(r.loss)) lossVals.push(r.loss); if (fin(r.eval_loss)) lossVals.push(r.eval_loss); }
    const lt = o.log ? logTicks(lossVals) : niceTicks(...minMax(lossVals, true));
    const rightVals = o.right === 'none' ? [] : rs.map(r => r[o.right]).filter(v => v !== null && v !== undefined && isFinite(v));
    const rt = niceTicks(...minMax(rightVals.concat([0]), false));
    const X = v => box.l + (v - xt.lo) / (xt.hi - xt.lo) * (box.r - box.l);
    const ly = v => (o.log ? Math.log10(v) : v);
    const YL = v => box.b - (ly(v) - ly(lt.lo)) / (ly(lt.hi) - ly(lt.lo)) * (box.b - box.t);
    const YR = v => box.b - (v - rt.lo) / (rt.hi - rt.lo) * (box.b - box.t);
    const titles = { x: o.x === 'epoch' ? 'epoch' : 'optimizer step', left: `loss (nats per token${o.log ? ', log scale' : ''})`,
                     right: RIGHT_SERIES[o.right] };
    c.dataset.titles = JSON.stringify(titles);
    c.dataset.ticks = JSON.stringify({ x: xt.ticks, y: lt.ticks, y2: o.right === 'none' ? [] : rt.ticks,
                                       xstep: xt.step, ystep: o.log ? null : lt.step, y2step: rt.step });
    grid(g, box, xt, lt, o.right === 'none' ? null : rt, X, YL, YR, titles);
    const keep = thin(rs, Math.max(1, Math.floor((box.r - box.l) * 2)));
    const finite = v => v !== null && v !== undefined && isFinite(v);
    if (o.right !== 'none') line(g, keep.filter(r => finite(r[o.right])), r => X(this.xOf(r)), r => YR(r[o.right]), CHART_COLORS[o.right], 1.5);
    const losses = keep.filter(r => fin(r.loss));
    if (o.smooth > 0) {
      line(g, losses, r => X(this.xOf(r)), r => YL(r.loss), CHART_COLORS.loss, 1, 0.3);
      const sm = smoothed(rs.filter(r => fin(r.loss)).map(r => r.loss), o.smooth);
      const pts = rs.filter(r => fin(r.loss)).map((r, i) => ({ x: this.xOf(r), y: sm[i] }));
      line(g, thin(pts, Math.max(1, Math.floor((box.r - box.l) * 2))), p => X(p.x), p => YL(p.y), CHART_COLORS.loss, 2);
    } else {
      line(g, losses, r => X(this.xOf(r)), r => YL(r.loss), CHART_COLORS.loss, 1.5);
    }
    g.fillStyle = CHART_COLORS.eval_loss;
    for (const r of rs) if (fin(r.eval_loss)) { g.beginPath(); g.arc(X(this.xOf(r)), YL(r.eval_loss), 3.5, 0, 7); g.fill(); }
    const drawn = this.drawMarks(g, box, X);
    c.dataset.marks = String(drawn);
    legend(g, box, o);
    this.view = { box, X, xt };
  }

  // Every overlaid run's loss (smoothed when asked) and eval dots on shared axes; no right axis.
  drawOverlay(g, w, h) {
    const c = this.canvas, o = this.opts, all = this.series;
    const box = { l: 64, r: w - 16, t: 24 + 14 * Math.ceil(all.length / 4), b: h - 40 };
    const fin = v => v !== null && v !== undefined && isFinite(v) && (!o.log || v > 0);
    let n = 0, xlo = Infinity, xhi = -Infinity;
    const lossVals = [];
    for (const s of all) {
      n += s.records.length;
      for (const r of s.records) {
        const x = this.xOf(r);
        if (x !== null && x !== undefined && isFinite(x)) { if (x < xlo) xlo = x; if (x > xhi) xhi = x; }
        if (fin(r.loss)) lossVals.push(r.loss);
        if (fin(r.eval_loss)) lossVals.push(r.eval_loss);
      }
    }
    Object.assign(c.dataset, { points: String(n), series: String(all.length), marks: '0',
                               colors: JSON.stringify(all.map(s => s.color)) });
    this.view = null;
    if (!n) {
      g.fillStyle = CHART_COLORS.axis;
      g.fillText('none of these runs has a loss curve yet', box.l, h / 2);
      return;
    }
    const xt = niceTicks(xlo, xhi);
    const lt = o.log ? logTicks(lossVals) : niceTicks(...minMax(lossVals, true));
    const X = v => box.l + (v - xt.lo) / (xt.hi - xt.lo) * (box.r - box.l);
    const ly = v => (o.log ? Math.log10(v) : v);
    const YL = v => box.b - (ly(v) - ly(lt.lo)) / (ly(lt.hi) - ly(lt.lo)) * (box.b - box.t);
    const titles = { x: o.x === 'epoch' ? 'epoch' : 'optimizer step', left: `loss (nats per token${o.log ? ', log scale' : ''})`,
                     right: '' };
    c.dataset.titles = JSON.stringify(titles);
    c.dataset.ticks = JSON.stringify({ x: xt.ticks, y: lt.ticks, y2: [], xstep: xt.step, ystep: o.log ? null : lt.step,
                                       y2step: null });
    grid(g, box, xt, lt, null, X, YL, null, titles);
    const width = Math.max(1, Math.floor((box.r - box.l) * 2));
    for (const s of all) {
      const rs = s.records.filter(r => fin(r.loss));
      if (o.smooth > 0) {
        const sm = smoothed(rs.map(r => r.loss), o.smooth);
        line(g, thin(rs.map((r, i) => ({ x: this.xOf(r), y: sm[i] })), width), p => X(p.x), p => YL(p.y), s.color, 2);
      } else {
        line(g, thin(rs, width), r => X(this.xOf(r)), r => YL(r.loss), s.color, 1.5);
      }
      g.fillStyle = s.color;
      for (const r of s.records) if (fin(r.eval_loss)) { g.beginPath(); g.arc(X(this.xOf(r)), YL(r.eval_loss), 3.5, 0, 7); g.fill(); }
    }
    // The legend: each run's name in its colour, four to a line.
    all.forEach((s, i) => {
      const x = box.l + (i % 4) * ((box.r - box.l) / 4), y = 16 + 14 * Math.floor(i / 4);
      g.fillStyle = s.color; g.fillRect(x, y - 9, 10, 10);
      g.fillStyle = '#344054'; g.fillText(s.name.length > 28 ? s.name.slice(0, 27) + '…' : s.name, x + 14, y);
    });
    this.view = { box, X, xt };
  }

  // Checkpoints: dashed red lines with a flag; events: dotted lines labelled with their kind.
  drawMarks(g, box, X) {
    let n = 0;
    const at = step => { const x = this.xOfStep(step); return x === null ? null : X(x); };
    g.save();
    g.lineWidth = 1;
    for (const step of this.marks.checkpoints) {
      const x = at(step);
      if (x === null || x < box.l - 1 || x > box.r + 1) continue;
      g.strokeStyle = g.fillStyle = CHART_COLORS.checkpoint;
      g.setLineDash([4, 3]);
      g.beginPath(); g.moveTo(x, box.t); g.lineTo(x, box.b); g.stroke();
      g.setLineDash([]);
      g.beginPath(); g.moveTo(x, box.t); g.lineTo(x + 7, box.t + 4); g.lineTo(x, box.t + 8); g.fill();
      n++;
    }
    for (const e of this.marks.events) {
      const x = at(e.step);
      if (x === null || x < box.l - 1 || x > box.r + 1) continue;
      g.strokeStyle = g.fillStyle = CHART_COLORS.event;
      g.setLineDash([1, 3]);
      g.beginPath(); g.moveTo(x, box.t); g.lineTo(x, box.b); g.stroke();
      g.setLineDash([]);
      g.textAlign = 'left';
      g.fillText(e.kind === 'batch_order' ? 'batch order' : e.kind, x + 3, box.b - 4);
      n++;
    }
    g.restore();
    return n;
  }

  // The record nearest the pointer's x, its values in the tooltip.
  hover(ev) {
    const v = this.view;
    if (!v || (!this.records.length && !this.series)) return;
    const rect = this.canvas.getBoundingClientRect(), px = ev.clientX - rect.left;
    const want = v.xt.lo + (px - v.box.l) / (v.box.r - v.box.l) * (v.xt.hi - v.xt.lo);
    if (this.series) { this.hoverOverlay(ev, want); return; }
    const rs = this.records;
    let lo = 0, hi = rs.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.xOf(rs[mid]) < want) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(this.xOf(rs[lo - 1]) - want) <= Math.abs(this.xOf(rs[lo]) - want)) lo--;
    const r = rs[lo], num = (x, d = 4) => (x === null || x === undefined || !isFinite(x) ? '-' : Number(x).toFixed(d));
    const lines = [`step ${r.step} · epoch ${num(r.epoch, 3)}`, `loss ${num(r.loss)}`];
    if (r.eval_loss !== undefined && r.eval_loss !== null) lines.push(`eval loss ${num(r.eval_loss)}`);
    lines.push(`learning rate ${Number(r.lr || 0).toExponential(3)}`, `grad norm ${num(r.grad_norm, 3)}`,
               `tokens/s ${num(r.tokens_per_s, 0)}`);
    for (const e of this.marks.events) if (e.step === r.step) lines.push(e.message || e.kind);
    if (this.marks.checkpoints.includes(r.step)) lines.push('checkpoint saved');
    this.tip.textContent = lines.join('\n');
    this.tip.hidden = false;
    const x = v.X(this.xOf(r));
    this.tip.style.left = `${Math.min(Math.max(0, x + 12), this.canvas.clientWidth - 200)}px`;
    this.tip.style.top = `${Math.max(0, ev.clientY - rect.top - 20) + this.canvas.offsetTop}px`;
  }
}

// The nearest record of rs (sorted by x) to x `want`, or null.
LossChart.prototype.nearest = function (rs, want) {
  if (!rs.length) return null;
  let lo = 0, hi = rs.length - 1;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (this.xOf(rs[mid]) < want) lo = mid + 1; else hi = mid; }
  if (lo > 0 && Math.abs(this.xOf(rs[lo - 1]) - want) <= Math.abs(this.xOf(rs[lo]) - want)) lo--;
  return rs[lo];
};

// Overlaid runs: each run's record nearest the pointer, one line each.
LossChart.prototype.hoverOverlay = function (ev, want) {
  const num = (x, d = 4) => (x === null || x === undefined || !isFinite(x) ? '-' : Number(x).toFixed(d));
  const lines = [];
  for (const s of this.series) {
    const r = this.nearest(s.records, want);
    if (!r) continue;
    lines.push(`${s.name}: step ${r.step} · epoch ${num(r.epoch, 3)} · loss ${num(r.loss)}` +
               (r.eval_loss !== undefined && r.eval_loss !== null ? ` · eval ${num(r.eval_loss)}` : ''));
  }
  const rect = this.canvas.getBoundingClientRect();
  this.tip.textContent = lines.join('\n');
  this.tip.hidden = !lines.length;
  this.tip.style.left = `${Math.min(Math.max(0, ev.clientX - rect.left + 12), Math.max(0, this.canvas.clientWidth - 360))}px`;
  this.tip.style.top = `${Math.max(0, ev.clientY - rect.top - 20) + this.canvas.offsetTop}px`;
};

function minMax(vals, pad) {
  let lo = Infinity, hi = -Infinity;  // a loop: spreading 100k values would overflow the stack
  for (const v of vals) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (pad && lo >= 0) lo = Math.max(0, lo - (hi - lo) * 0.05);
  return [lo, hi];
}

// Round ticks covering [lo, hi]: a step of 1, 2 or 5 × 10^k, about five intervals.
function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) { const d = Math.abs(hi) * 0.1 || 1; lo -= d; hi += d; }
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const a = Math.floor(lo / step + 1e-9), b = Math.ceil(hi / step - 1e-9);
  const ticks = [];
  for (let i = a; i <= b && ticks.length < 50; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { lo: ticks[0], hi: ticks[ticks.length - 1], step, ticks };
}

// Log-axis ticks: 1, 2, 5 × 10^k inside [lo, hi] rounded out to such values.
function logTicks(vals) {
  let [lo, hi] = minMax(vals, false);
  if (!(lo > 0)) { lo = 0.1; hi = Math.max(hi, 1); }
  if (hi <= lo) hi = lo * 2;
  const all = [];
  for (let k = Math.floor(Math.log10(lo)) - 1; k <= Math.ceil(Math.log10(hi)) + 1 && all.length < 60; k++)
    for (const m of [1, 2, 5]) all.push(Number((m * Math.pow(10, k)).toPrecision(12)));
  let first = all.length - 1, last = 0;
  for (let i = 0; i < all.length; i++) { if (all[i] <= lo) first = i; }
  for (let i = all.length - 1; i >= 0; i--) { if (all[i] >= hi) last = i; }
  const ticks = all.slice(Math.min(first, last), Math.max(first, last) + 1);
  return { lo: ticks[0], hi: ticks[ticks.length - 1], step: null, ticks };
}

// TensorBoard's smoothing: an exponential moving average, debiased for the first points.
function smoothed(vals, w) {
  const out = [];
  let s = 0;
  for (let i = 0; i < vals.length; i++) { s = w * s + (1 - w) * vals[i]; out.push(s / (1 - Math.pow(w, i + 1))); }
  return out;
}

function tickLabel(v, step) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  // An axis of small steps (a learning rate) is labelled in exponents throughout: 2e-4, 1e-3.
  if ((step && step < 1e-3) || a < 1e-3 || a >= 1e6) return Number(v.toPrecision(6)).toExponential();
  const d = step ? Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) : Math.max(0, -Math.floor(Math.log10(a)));
  return v.toFixed(Math.min(d, 8));
}

function thin(records, n) {
  if (records.length <= n) return records;
  const out = [], stride = records.length / n;
  for (let i = 0; i < n; i++) out.push(records[Math.floor(i * stride)]);
  out.push(records[records.length - 1]);
  return out;
}

function line(g, pts, fx, fy, color, width, alpha = 1) {
  if (!pts.length) return;
  g.save();
  g.globalAlpha = alpha;
  g.strokeStyle = color;
  g.lineWidth = width;
  g.beginPath();
  pts.forEach((p, i) => (i ? g.lineTo(fx(p), fy(p)) : g.moveTo(fx(p), fy(p))));
  g.stroke();
  g.restore();
}

function grid(g, box, xt, lt, rt, X, YL, YR, titles) {
  g.lineWidth = 1;
  g.strokeStyle = '#e4e7ec';
  g.fillStyle = CHART_COLORS.axis;
  g.textAlign = 'right';
  for (const v of lt.ticks) {
    const y = YL(v);
    g.beginPath(); g.moveTo(box.l, y); g.lineTo(box.r, y); g.stroke();
    g.fillText(tickLabel(v, lt.step), box.l - 4, y + 4);
  }
  g.textAlign = 'center';
  for (const v of xt.ticks) {
    const x = X(v);
    g.beginPath(); g.moveTo(x, box.t); g.lineTo(x, box.b); g.stroke();
    g.fillText(tickLabel(v, xt.step), x, box.b + 14);
  }
  if (rt) {
    g.textAlign = 'left';
    for (const v of rt.ticks) g.fillText(tickLabel(v, rt.step), box.r + 4, YR(v) + 4);
  }
  g.strokeStyle = CHART_COLORS.axis;
  g.strokeRect(box.l, box.t, box.r - box.l, box.b - box.t);
  // Axis titles: x under the ticks, the loss axis and the right series turned along their axes.
  g.textAlign = 'center';
  g.fillText(titles.x, (box.l + box.r) / 2, box.b + 30);
  const vertical = (text, x, angle) => { g.save(); g.translate(x, (box.t + box.b) / 2); g.rotate(angle); g.fillText(text, 0, 0); g.restore(); };
  vertical(titles.left, 12, -Math.PI / 2);
  if (rt && titles.right) vertical(titles.right, g.canvas.clientWidth - 8, Math.PI / 2);
  g.textAlign = 'left';
}

function legend(g, box, o) {
  const items = [['training loss' + (o.smooth ? ' (smoothed)' : ''), CHART_COLORS.loss], ['eval loss', CHART_COLORS.eval_loss]];
  if (o.right !== 'none') items.push([RIGHT_SERIES[o.right], CHART_COLORS[o.right]]);
  items.push(['checkpoint', CHART_COLORS.checkpoint]);
  let x = box.l;
  for (const [name, color] of items) {
    g.fillStyle = color; g.fillRect(x, 7, 10, 10);
    g.fillStyle = '#344054'; g.fillText(name, x + 14, 16);
    x += g.measureText(name).width + 30;
  }
}
