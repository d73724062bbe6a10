#!/usr/bin/env node
'use strict';

/**
 * Clean every photo of a folder with the default pool and print a table.
 *
 *   node examples/demo.js [samplesDir] [outDir]
 *
 * samplesDir defaults to <repo>/samples, outDir to <repo>/out. Each photo gives
 * one output per entry of VARIANTS; the ID version also gets <name>.id.json,
 * its meta (face, roll_deg, compliance report), which `python -m
 * demo.contact_sheet` draws as a column of checks. Pool settings come from
 * PYWORKER_* variables (PYWORKER_POOL_SIZE, PYWORKER_THREADS, ...).
 */

const fs = require('node:fs/promises');
const path = require('node:path');
const { removeBackgroundBufferWithMeta, shutdown } = require('pyworker-cutout');

const REPO = path.resolve(__dirname, '..', '..');
const PHOTO_RE = /\.(jpe?g|png|webp|bmp)$/i;

/**
 * What to make of each photo: <name><suffix>.<ext> with these options. The
 * names are the ones `python -m demo.contact_sheet` looks for.
 */
const VARIANTS = [
  { name: 'cutout', suffix: '', options: {} },
  // Passport-style 35x45 mm portrait on the preset's light background; a
  // photo without a face falls back to framing the subject (meta.cropMode).
  { name: 'id card', suffix: '.id', options: { preset: 'passport-35x45' }, writeMeta: true },
];

const EXT_BY_MIME = { 'image/png': 'png', 'image/webp': 'webp', 'image/jpeg': 'jpg' };

function kb(bytes) {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function printTable(rows) {
  const headers = Object.keys(rows[0]);
  const widths = headers.map((h) => Math.max(h.length, ...rows.map((r) => String(r[h]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  console.log(line(headers));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(headers.map((h) => r[h])));
}

async function main() {
  const samplesDir = path.resolve(process.argv[2] || path.join(REPO, 'samples'));
  const outDir = path.resolve(process.argv[3] || path.join(REPO, 'out'));
  const photos = (await fs.readdir(samplesDir)).filter((f) => PHOTO_RE.test(f)).sort();
  if (photos.length === 0) {
    console.error(`no photos (jpg, png, webp, bmp) in ${samplesDir}`);
    return 1;
  }
  await fs.mkdir(outDir, { recursive: true });

  const started = Date.now();
  // Submit everything at once; the pool queues and spreads the jobs.
  const jobs = [];
  for (const photo of photos) {
    const input = await fs.readFile(path.join(samplesDir, photo));
    for (const variant of VARIANTS) {
      jobs.push(
        (async () => {
          const t0 = process.hrtime.bigint();
          try {
            const r = await removeBackgroundBufferWithMeta(input, variant.options);
            const ms = Number(process.hrtime.bigint() - t0) / 1e6;
            const out = `${path.parse(photo).name}${variant.suffix}.${EXT_BY_MIME[r.mime] || 'png'}`;
            await fs.writeFile(path.join(outDir, out), r.image);
            if (variant.writeMeta) {
              const metaFile = `${path.parse(photo).name}${variant.suffix}.json`;
              await fs.writeFile(path.join(outDir, metaFile), `${JSON.stringify(r.meta, null, 2)}\n`);
            }
            const framing = variant.options.preset ? ` (framed: ${r.meta.cropMode})` : '';
            let report = '';
            if (r.meta.compliance) {
              const failing = r.meta.compliance.checks.filter((c) => !c.passed).map((c) => c.name);
              const turned = r.meta.rollDeg ? `turned ${r.meta.rollDeg.toFixed(1)}°; ` : '';
              report = `${turned}${failing.length ? `fails ${failing.join(', ')}` : 'compliant'}`;
            }
            return { photo, variant: variant.name, input: kb(input.length), 'latency ms': ms.toFixed(0), 'worker ms': r.meta.timingsMs.total.toFixed(0), 'worker pid': r.workerPid, 'worker RSS MB': r.stats.rssMb.toFixed(1), output: out + framing, report };
          } catch (err) {
            const ms = Number(process.hrtime.bigint() - t0) / 1e6;
            return { photo, variant: variant.name, input: kb(input.length), 'latency ms': ms.toFixed(0), 'worker ms': '-', 'worker pid': err.workerPid ?? '-', 'worker RSS MB': '-', output: `FAILED ${err.code}: ${err.message}`, report: '' };
          }
        })(),
      );
    }
  }
  const rows = await Promise.all(jobs);
  if (VARIANTS.length === 1) for (const r of rows) delete r.variant;
  printTable(rows);
  // Every job is submitted at once, so latency includes the wait in the queue;
  // worker ms is the worker's own time for the job (decode to encode).
  const failed = rows.filter((r) => r.output.startsWith('FAILED')).length;
  console.log(`\n${rows.length - failed}/${rows.length} written to ${outDir} in ${Date.now() - started} ms`);
  return failed ? 1 : 0;
}

main()
  .then(async (code) => {
    await shutdown();
    process.exitCode = code;
  })
  .catch(async (err) => {
    console.error(err);
    await shutdown({ force: true });
    process.exitCode = 1;
  });
