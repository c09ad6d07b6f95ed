// A small canvas chart of a training run: training loss (line), evaluation loss (dots) on the
// left axis and the learning rate (line) on the right axis, against the optimizer step. It
// redraws at most once per animation frame however fast steps arrive, and thins long runs to
// about two points per pixel column. canvas.dataset.points holds the number of records drawn.
'use strict';

class LossChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.records = [];
    this.pending = false;
    new ResizeObserver(() => this.schedule()).observe(canvas);
  }

  setRecords(records) { this.records = records.slice(); this.schedule(); }
  add(record) {
    const last = this.records[this.records.length - 1];
    if (last && last.step === record.step) Object.assign(last, record);  // an eval joins its step
    else this.records.push(record);
    this.schedule();
  }
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = '11px system-ui, sans-serif';
    c.dataset.points = String(this.records.length);
    const box = { l: 52, r: w - 62, t: 22, b: h - 28 };
    if (!this.records.length) {
      g.fillStyle = '#667085';
      g.fillText('loss and learning rate appear here once training starts', box.l, h / 2);
      return;
    }
    const steps = this.records.map(r => r.step);
    const x0 = steps[0], x1 = Math.max(steps[steps.length - 1], x0 + 1);
    const losses = this.records.flatMap(r => [r.loss, r.eval_loss]).filter(v => v != null && isFinite(v));
    const lrs = this.records.map(r => r.lr).filter(v => v != null && isFinite(v));
    const ly = range(losses), ry = range(lrs.length ? lrs.concat([0]) : [0, 1]);
    const X = s => box.l + (s - x0) / (x1 - x0) * (box.r - box.l);
    const YL = v => box.b - (v - ly.lo) / (ly.hi - ly.lo) * (box.b - box.t);
    const YR = v => box.b - (v - ry.lo) / (ry.hi - ry.lo) * (box.b - box.t);
    axes(g, box, x0, x1, ly, ry);
    const keep = thin(this.records, Math.max(1, Math.floor((box.r - box.l) * 2)));
    line(g, keep.filter(r => r.loss != null && isFinite(r.loss)), r => X(r.step), r => YL(r.loss), '#2b59c3');
    line(g, keep.filter(r => r.lr != null), r => X(r.step), r => YR(r.lr), '#12b76a');
    g.fillStyle = '#f79009';
    for (const r of this.records)
      if (r.eval_loss != null && isFinite(r.eval_loss)) { g.beginPath(); g.arc(X(r.step), YL(r.eval_loss), 3, 0, 7); g.fill(); }
    legend(g, box);
  }
}

function range(vals) {
  let lo = Infinity, hi = -Infinity;  // a loop: spreading 100k values would overflow the stack
  for (const v of vals) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (hi - lo < 1e-12) { hi += Math.abs(hi) * 0.05 + 1e-6; lo -= Math.abs(lo) * 0.05 + 1e-6; }
  const pad = (hi - lo) * 0.05;
  return { lo: Math.max(lo - pad, lo >= 0 ? 0 : -Infinity), hi: hi + pad };
}

function thin(records, n) {
  if (records.length <= n) return records;
  const out = [], stride = records.length / n;
  for (let i = 0; i < n; i++) out.push(records[Math.floor(i * stride)]);
  out.push(records[records.length - 1]);
  return out;
}

function line(g, pts, fx, fy, color) {
  if (!pts.length) return;
  g.strokeStyle = color;
  g.lineWidth = 1.5;
  g.beginPath();
  pts.forEach((p, i) => (i ? g.lineTo(fx(p), fy(p)) : g.moveTo(fx(p), fy(p))));
  g.stroke();
}

function axes(g, box, x0, x1, ly, ry) {
  g.strokeStyle = '#e4e7ec';
  g.fillStyle = '#475467';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = box.b - i / 4 * (box.b - box.t);
    g.beginPath(); g.moveTo(box.l, y); g.lineTo(box.r, y); g.stroke();
    g.textAlign = 'right';
    g.fillText((ly.lo + i / 4 * (ly.hi - ly.lo)).toPrecision(3), box.l - 4, y + 4);
    g.textAlign = 'left';
    g.fillText((ry.lo + i / 4 * (ry.hi - ry.lo)).toExponential(1), box.r + 4, y + 4);
  }
  g.textAlign = 'center';
  for (let i = 0; i <= 4; i++) {
    const s = x0 + i / 4 * (x1 - x0);
    g.fillText(String(Math.round(s)), box.l + i / 4 * (box.r - box.l), box.b + 16);
  }
  g.textAlign = 'left';
}

function legend(g, box) {
  const items = [['loss', '#2b59c3'], ['eval loss', '#f79009'], ['learning rate', '#12b76a']];
  let x = box.l;
  for (const [name, color] of items) {
    g.fillStyle = color; g.fillRect(x, 6, 10, 10);
    g.fillStyle = '#344054'; g.fillText(name, x + 14, 15);
    x += g.measureText(name).width + 34;
  }
}
