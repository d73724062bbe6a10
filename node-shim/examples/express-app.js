// An Express app with background removal (README.md, "Use it in your app"): POST /api/remove-background
// (multipart field "image"), GET /api/health, batches with progress (POST /api/batches) and their page at GET /.
const express = require('express');
const { createRouter, createBatchRouter } = require('pyworker-cutout/express');
const { createQueueClient, getDefaultPool, shutdown } = require('pyworker-cutout');

const app = express();
app.use('/api', createRouter()); // workers from PYWORKER_* variables, started now
const { PYWORKER_REDIS_URL: redis, PYWORKER_QUEUE: queue } = process.env; // if set, batches go to that queue's consumers
const remote = redis && queue ? createQueueClient({ redis, queue }) : null;
app.use(createBatchRouter({ remover: remote || getDefaultPool() }));
const server = app.listen(Number(process.env.PORT || 3000), () => console.log(`listening on ${server.address().port}`));
process.on('SIGTERM', () => server.close(() => Promise.all([remote?.close(), shutdown()]))); // finish requests, stop workers
