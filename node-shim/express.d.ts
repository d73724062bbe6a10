// Types of `pyworker-cutout/express` (plain JS, no build step). Express's own
// types are not needed: the router is typed as the request handler it is.
/// <reference types="node" />

import type { Capability, Pool, RemoveOptions } from './index';

/** Batches with progress and their page: the same function as the package index's. */
export { createBatchRouter } from './index';

export interface RouterOptions {
  /** Default: the process-wide default pool (PYWORKER_* variables), closed by `shutdown()`. */
  pool?: Pool;
  /** Largest upload, in bytes; larger ones get 413 input_too_large. Default 10 MiB. */
  maxUploadBytes?: number;
  /** /health is CRITICAL (503) when a ready worker's RSS is above this. Default: the pool's memoryLimitMb, else 1024. */
  criticalMb?: number;
  /** /health is WARNING above this. Default 80 % of criticalMb. */
  warnMb?: number;
  /** Retry-After (seconds) of a 503. Default 2. */
  retryAfterSeconds?: number;
  /**
   * Request bytes received or held at once, all requests together (each reserves its Content-Length, or
   * maxUploadBytes when it has none, until its response is done); beyond it, 503 + Retry-After and
   * `Connection: close`, sent once the body has been read and thrown away (never buffered), so the client
   * gets the status rather than a reset. Default 64 MiB.
   */
  maxTotalUploadBytes?: number;
  /** A job taking longer answers 504 job_timeout; its worker is SIGKILLed and replaced. Default: the pool's jobTimeoutMs. */
  timeoutMs?: number;
}

/** An Express router: mount it with `app.use(path, router)`. */
export interface PyworkerRouter {
  (req: any, res: any, next: (err?: unknown) => void): void;
}

/** POST /remove-background and GET /health, for `app.use('/api', createRouter())`. */
export declare function createRouter(options?: RouterOptions): PyworkerRouter;

export interface WorkerHealth {
  pid: number;
  state: string;
  jobs: number;
  /** VmRSS of the process, MiB. */
  rssMb: number | null;
  /** VmHWM (peak RSS) of the process, MiB. */
  peakRssMb: number | null;
  /** 'proc': read from /proc/<pid>/status; 'worker': the worker's last reported figures (no /proc). */
  source: 'proc' | 'worker';
}

export interface Health {
  status: 'OK' | 'STARTING' | 'WARNING' | 'CRITICAL';
  /** 503 for CRITICAL, else 200. */
  httpStatus: 200 | 503;
  reasons: string[];
  thresholds: { warnMb: number; criticalMb: number };
  /** What this install can do, as the first worker's `ready` frame said (null until one is ready); each one missing is a WARNING reason. */
  capabilities: Record<Capability, boolean> | null;
  pool: {
    size: number;
    queued: number;
    running: number;
    maxQueue: number | null;
    completed: number;
    failed: number;
    recycled: Record<string, number>;
    totalRssMb: number;
  };
  workers: WorkerHealth[];
}

export declare function health(pool: Pool, thresholds: { warnMb: number; criticalMb: number }): Health;
/** VmRSS and VmHWM of a process in MiB, or null where /proc cannot be read. */
export declare function procMemory(pid: number): { rssMb: number; peakRssMb: number } | null;

export declare class HttpError extends Error {
  constructor(status: number, code: string, message: string);
  status: number;
  code: string;
}
export declare function errorResponse(
  err: unknown,
  options?: { retryAfterSeconds?: number },
): { status: number; code: string; message: string; headers?: Record<string, string> };
export declare const STATUS_BY_CODE: Readonly<Record<string, number>>;
/** Request options from multipart text fields (strings), e.g. {maxSize: "800"} -> {maxSize: 800}. */
export declare function optionsFromFields(body?: Record<string, unknown>): RemoveOptions;
export declare const FIELD_PARSERS: Readonly<Record<string, 'int' | 'bool' | 'string'>>;
export declare const ACCEPTED_TYPES: ReadonlySet<string>;
