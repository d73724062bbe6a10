// A TypeScript consumer of pyworker-cutout, checked by `tsc --noEmit --strict`
// (test/types.test.js). Every `@ts-expect-error` line is a mistake the types
// must catch: if one stops being an error, tsc fails on the unused directive.
import { createPool, isFallback, removeBackgroundBuffer, WorkerError, type RemoveOptions } from 'pyworker-cutout';
import { createRouter, health } from 'pyworker-cutout/express';

async function main(photo: Buffer): Promise<void> {
  const pool = createPool({ size: 1, memoryLimitMb: 600, model: 'u2netp' });

  const options: RemoveOptions = { maxSize: 800, bgColor: '#1f4e9c', format: 'webp', preset: 'passport-35x45', model: 'u2netp' };
  const png = await pool.remove(photo, options);

  // isFallback narrows: the README's example compiles.
  const out = await pool.remove(photo, { fallback: 'original' });
  if (isFallback(out)) console.warn(out.pyworkerFallback.code, out.pyworkerFallback.message);
  const r = await pool.removeWithMeta(photo, { fallback: 'original' });
  if (isFallback(r)) console.warn(r.error.code);
  else console.log(r.meta.width, r.stats.peakRssMb, r.workerPid + 1);
  // The mask's model and why the portrait model was passed over.
  if (!isFallback(r) && r.meta.modelFallback) console.log(r.meta.model, r.meta.modelFallback.from, r.meta.modelFallback.reason === 'no_face');

  await removeBackgroundBuffer(png, { maxSize: 0, bgColor: [255, 255, 255], trim: true, padding: 8, signal: AbortSignal.timeout(5000) });

  // @ts-expect-error: a typo in an option name is an unknown key
  await pool.remove(photo, { bgColour: '#ffffff' });
  // @ts-expect-error: a typo in a preset name
  await pool.remove(photo, { preset: 'pasport-35x45' });
  // @ts-expect-error: not an output format
  await pool.remove(photo, { format: 'gif' });
  // @ts-expect-error: not a model
  await pool.remove(photo, { model: 'u2net-typo' });
  // @ts-expect-error: fallback takes 'throw' or 'original'
  await pool.remove(photo, { fallback: 'silent' });
  // @ts-expect-error: an unknown pool option
  createPool({ sizee: 2 });

  try {
    await pool.remove(photo);
  } catch (err) {
    if (err instanceof WorkerError && err.code === 'invalid_image') console.error(err.message, err.workerPid);
  }

  const router = createRouter({ pool, maxUploadBytes: 10 * 1024 * 1024, criticalMb: 600 });
  void router;
  const h = health(pool, { warnMb: 400, criticalMb: 600 });
  if (h.status === 'STARTING') console.log(h.workers.map((w) => w.peakRssMb));
  await pool.close();
}

void main;
