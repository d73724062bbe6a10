// The batch page: no build step, no framework. Talks to the batch routes
// relative to this page (POST api/batches, its events, items and zip).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $('batch-form');
  const input = $('files');
  const drop = $('drop');
  let chosen = [];

  function choose(files) {
    chosen = [...files];
    $('drop-text').textContent = chosen.length ? `${chosen.length} file${chosen.length > 1 ? 's' : ''}: ${chosen.map((f) => f.name).join(', ')}` : 'Drop photos or a zip here, or click to choose';
    $('start').disabled = chosen.length === 0;
  }
  input.addEventListener('change', () => choose(input.files));
  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => (e.preventDefault(), drop.classList.add('over')));
  for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    choose(e.dataTransfer.files);
  });
  $('transparent').addEventListener('change', (e) => ($('bg').disabled = e.target.checked));

  function showError(message) {
    $('error').textContent = message;
    $('error').hidden = !message;
  }

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  const fmt = (v) => (v === null ? 'n/a' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : Array.isArray(v) ? v.map(fmt).join('–') : String(v));

  // Compliance (meta.compliance, for preset jobs): each check with its value,
  // accepted range and pass/fail, as an array or an object of checks.
  function complianceLines(c) {
    const checks = Array.isArray(c) ? c : Array.isArray(c.checks) ? c.checks : c.checks && typeof c.checks === 'object' ? Object.entries(c.checks).map(([name, v]) => ({ name, ...v })) : Object.entries(c).filter(([, v]) => v && typeof v === 'object').map(([name, v]) => ({ name, ...v }));
    return checks.map((k) => {
      const pass = k.pass ?? k.passed ?? k.ok;
      const range = k.range ?? k.accepted ?? (k.min !== undefined || k.max !== undefined ? [k.min ?? '', k.max ?? ''] : undefined);
      const text = `${k.name ?? k.check ?? 'check'}: ${k.value !== undefined ? fmt(k.value) : ''}${range !== undefined ? ` (accepted ${fmt(range)})` : ''}${k.note ? `, ${k.note}` : ''}`;
      return el('li', { class: pass === true ? 'pass' : pass === false ? 'fail' : 'info', text });
    });
  }

  function report(meta) {
    const lines = [];
    if (meta.compliance) {
      const c = meta.compliance;
      const overall = c.pass ?? c.passed ?? c.ok;
      if (overall !== undefined) lines.push(el('li', { class: overall ? 'pass' : 'fail', text: overall ? 'compliant' : 'not compliant' }));
      lines.push(...complianceLines(c));
    }
    lines.push(el('li', { class: 'info', text: `${meta.inputWidth}×${meta.inputHeight} → ${meta.width}×${meta.height}` }));
    if (meta.preset) lines.push(el('li', { class: meta.face ? 'pass' : 'fail', text: meta.face ? `face found (${(meta.faces || []).length} detected), ${meta.preset}` : `no face: subject framed (${meta.preset})` }));
    if (meta.timingsMs) lines.push(el('li', { class: 'info', text: `${Math.round(meta.timingsMs.total)} ms on the worker` }));
    return el('ul', { class: 'report' }, lines);
  }

  function card(batchId, ev) {
    const li = el('li', { class: ev.ok ? 'done' : 'failed', 'data-index': String(ev.index) });
    if (ev.ok) {
      li.append(el('img', { class: 'thumb', alt: ev.name, src: `api/batches/${batchId}/items/${ev.index}` }));
      li.append(el('p', { class: 'name', text: ev.name }));
      if (ev.meta) li.append(report(ev.meta));
    } else {
      li.append(el('p', { class: 'name', text: ev.name }));
      li.append(el('p', { class: 'code', text: `${ev.error.code}: ${ev.error.message}` }));
    }
    return li;
  }

  function setProgress(p) {
    const pct = p.total ? Math.round((100 * (p.done + p.failed)) / p.total) : 0;
    $('bar-fill').style.width = `${pct}%`;
    $('bar').setAttribute('aria-valuenow', String(pct));
    $('percent').textContent = `${pct} %`;
    $('status').textContent = `${p.done} done, ${p.failed} failed, ${p.total} in all`;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError('');
    const body = new FormData();
    for (const f of chosen) body.append('photos', f, f.name);
    if ($('preset').value) body.append('preset', $('preset').value);
    if (!$('transparent').checked) body.append('bgColor', $('bg').value);
    if ($('max-size').value !== '') body.append('maxSize', $('max-size').value);
    if ($('strict').checked) body.append('strict', 'true');
    $('start').disabled = true;
    let batch;
    try {
      const res = await fetch('api/batches', { method: 'POST', body });
      const json = await res.json();
      if (!res.ok) throw new Error(`${json.error.code}: ${json.error.message}`);
      batch = json;
    } catch (err) {
      showError(String(err.message || err));
      $('start').disabled = false;
      return;
    }
    $('run').hidden = false;
    $('results').replaceChildren();
    $('download').hidden = true;
    setProgress({ done: 0, failed: 0, total: batch.total });
    const events = new EventSource(`api/batches/${batch.id}/events`);
    events.addEventListener('progress', (m) => {
      const ev = JSON.parse(m.data);
      setProgress(ev);
      $('results').append(card(batch.id, ev));
    });
    events.addEventListener('end', (m) => {
      events.close();
      setProgress(JSON.parse(m.data));
      const a = $('download');
      a.href = `api/batches/${batch.id}/results.zip`;
      a.hidden = false;
      $('start').disabled = chosen.length === 0;
    });
    events.onerror = () => {
      if (events.readyState === EventSource.CLOSED) showError('lost the connection to the server');
    };
  });
})();
