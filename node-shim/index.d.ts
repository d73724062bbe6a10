// Type declarations of the pyworker Node client (plain JS, no build step).
/// <reference types="node" />

import { EventEmitter } from 'node:events';

// ---------------------------------------------------------------------------
// Per-request options

/** "#rrggbb", [r, g, b] (0-255), or null for a transparent background. */
export type BgColor = string | [number, number, number] | null;

/** Models the worker knows (docs/protocol.md#options-of-remove); their weights must be installed (`pyworker models install NAME`). */
export type ModelName = 'u2netp' | 'u2net' | 'u2net_human_seg' | 'silueta' | 'isnet-general-use' | 'modnet';

/** ID-photo presets (docs/id-photos.md). */
export type PresetName = 'passport-35x45' | 'us-2x2' | 'avatar';

/** Encodings of the result. */
export type OutputFormat = 'png' | 'webp' | 'jpeg' | 'jpg';

/**
 * Options of one request. They mirror the worker's `remove` options
 * (docs/protocol.md#options-of-remove) in camelCase and are sent in
 * snake_case. Exact: a key not listed here (a typo such as `bgColour`) is a
 * type error. At run time, plain JavaScript callers get the same answer from
 * the worker: unknown keys are forwarded and rejected with `bad_request`.
 */
export interface RemoveOptions {
  /** Model name (default: the worker's `--model`, u2netp). */
  model?: ModelName | null;
  /** Longest side of the result in pixels, up to the worker's --max-side; 0 keeps the input size. Never upscales. Default 800. */
  maxSize?: number | null;
  /** Background fill; null keeps it transparent. */
  bgColor?: BgColor;
  /** Encoding of the result ("jpg" is read as "jpeg"). Default "png". */
  format?: OutputFormat;
  /** Return the 8-bit mask (PNG) instead of the cut-out. */
  onlyMask?: boolean;
  /** Cleaner, feathered edges. */
  refine?: boolean;
  /** Crop to the subject plus `padding`. */
  trim?: boolean;
  /** Pixels around the subject with `trim`, in the result's scale (0-4096). */
  padding?: number;
  /** Frame the head. */
  crop?: 'face' | null;
  /** ID format (docs/id-photos.md). */
  preset?: PresetName | null;
  /** With crop/preset: fail with `no_face` when no face is found. */
  faceRequired?: boolean;
  /** With crop/preset: fail with `not_compliant` when the compliance report has a failing check. */
  strict?: boolean;

  // Client-side options (not sent)
  /** Abort the request: a queued job never reaches a worker; a running one rejects at once and its worker is killed and replaced. */
  signal?: AbortSignal;
  /** Overrides the pool's `jobTimeoutMs` for this request. */
  timeoutMs?: number;
  /** Overrides the pool's `fallback` for this request (worker failures only; the caller's own errors always reject). */
  fallback?: 'throw' | 'original';
}

// ---------------------------------------------------------------------------
// Pool options

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One log entry: a worker's stderr JSON line (source "worker") or a client event (source "client"). */
export interface LogEntry {
  level: LogLevel;
  event: string;
  source: 'worker' | 'client';
  pid?: number;
  [key: string]: unknown;
}

export type Logger =
  | ((entry: LogEntry) => void)
  | { debug?(entry: LogEntry): void; info?(entry: LogEntry): void; warn?(entry: LogEntry): void; error?(entry: LogEntry): void; log?(entry: LogEntry): void };

export interface PoolOptions {
  /** A Python that has pyworker installed, run as `<python> -m pyworker`. Default: PYWORKER_PYTHON, else the interpreter of the `pyworker` command on PATH. */
  python?: string;
  /** Extra worker arguments, appended after the ones the pool derives (a later flag wins). */
  args?: string[];
  /** Extra environment of the workers (merged over process.env). */
  env?: Record<string, string | undefined>;
  /** Working directory of the workers (resolved when the pool is created). Default: the app's own. */
  cwd?: string;
  /** Start-up model (--model). */
  model?: ModelName;

  /** Number of workers. Default: floor(memoryBudgetMb / workerMemoryMb), capped by the CPU count, at least 1. */
  size?: number;
  /** Memory the pool may use, for the default size. Default min(1024, a quarter of os.totalmem()). */
  memoryBudgetMb?: number;
  /** Expected peak RSS of one worker, for the default size. Default 300. */
  workerMemoryMb?: number;
  /** onnxruntime threads per worker (--threads). Default max(1, floor(cores / size)). */
  threads?: number;
  /** Start workers on first use instead of at once. Default false. */
  lazy?: boolean;
  /** Workers kept running even when idle. Default: size (0 when lazy). */
  minWorkers?: number;
  /** A worker idle this long is stopped while more than minWorkers run (piscina's idleTimeout). Default 60000; Infinity: never. */
  idleTimeoutMs?: number;

  /**
   * Recycle a worker whose reported RSS is above this after a job (the pool
   * also passes it as --max-rss-mb, so the worker retires itself with exit 75).
   * No request fails because of a recycle. Default: none.
   */
  memoryLimitMb?: number | null;
  /** Recycle a worker after this many jobs (0 or Infinity: never). Default 0. */
  maxJobsPerWorker?: number;
  /** Adds 0..maxJobsJitter to each worker's maxJobsPerWorker, so workers do not all restart together. Default 0. */
  maxJobsJitter?: number;

  /** A job running longer on a worker is a TimeoutError; the worker is killed (SIGKILL) and replaced. Default 30000. */
  jobTimeoutMs?: number;
  /**
   * A busy worker gets an urgent ping every pingTimeoutMs / 2, answered even mid-job by its stdin thread; one not answered
   * within it cannot run (stopped, stuck holding the GIL): SIGKILLed, replaced, its job retried as a crash. Infinity: never. Default 10000.
   */
  pingTimeoutMs?: number;
  /** Time for a worker to send `ready`. Default 30000. */
  startTimeoutMs?: number;
  /** Grace for a worker to exit on close/recycle before SIGKILL. Default 10000. */
  closeTimeoutMs?: number;
  /** Jobs waiting for a worker beyond which remove() rejects at once with QueueFullError. Default 64. */
  maxQueue?: number;
  /** Image bytes waiting for a worker beyond which remove() rejects at once with QueueFullError (a first waiting job is always taken). Default 64 MiB. */
  maxQueueBytes?: number;
  /** How many times a job whose worker died (crash, signal, closed stdout, garbage) is sent again. Default 1. */
  retries?: number;
  /**
   * 'original': when the worker side fails (crash, timeout, queue full, model_unavailable, start failure), resolve
   * with the input bytes, marked as a fallback. The caller's own errors (bad_request, invalid_image,
   * unsupported_format, image_too_large/small, input_too_large, no_face, ...) always reject. Default 'throw'.
   */
  fallback?: 'throw' | 'original';
  /** First back-off after a worker failed to start (doubles each time). Default 1000. */
  restartBackoffMs?: number;
  /** Longest back-off. Default 30000. */
  maxRestartBackoffMs?: number;

  /** Worker limits (--max-input-mb, --max-side, --min-side, --max-frame-mb, --max-models). Default: the worker's. */
  maxInputMb?: number | null;
  maxSide?: number | null;
  minSide?: number | null;
  maxFrameMb?: number | null;
  maxModels?: number | null;
  /** Largest reply frame the client accepts. Default 256. */
  maxReplyFrameMb?: number;

  /** Where log entries go. Default: nothing, or JSON lines on stderr when DEBUG=pyworker. */
  logger?: Logger | null;
  /** Do not keep the Node process alive while the pool is idle. Default false (true for the default pool). */
  unref?: boolean;
}

/** PoolOptions with every default filled in (`pool.options`). */
export interface NormalizedPoolOptions
  extends Required<Omit<PoolOptions, 'env' | 'cwd' | 'model' | 'logger' | 'memoryLimitMb' | 'maxInputMb' | 'maxSide' | 'minSide' | 'maxFrameMb' | 'maxModels'>> {
  env: Record<string, string | undefined> | undefined;
  cwd: string | undefined;
  model: ModelName | undefined;
  logger: Logger | null | undefined;
  memoryLimitMb: number | null;
  maxInputMb: number | null;
  maxSide: number | null;
  minSide: number | null;
  maxFrameMb: number | null;
  maxModels: number | null;
}

// ---------------------------------------------------------------------------
// Results

/** A detected face, in input-image pixels. Eyes are named from the person's side. */
export interface FaceMeta {
  box: [number, number, number, number];
  score: number;
  landmarks: {
    rightEye: [number, number];
    leftEye: [number, number];
    nose: [number, number];
    mouthRight: [number, number];
    mouthLeft: [number, number];
  };
}

/** The checks of meta.compliance: the geometry, measured on the output, then the face's own, measured on the source photo. */
export type ComplianceCheckName =
  | 'head_height' | 'eye_line' | 'roll' | 'crown_visible' | 'photo_edges' | 'faces' | 'face_in_subject' | 'upscale' | 'background'
  | 'eyes_open' | 'eyes_visible' | 'mouth_closed' | 'expression' | 'yaw' | 'pitch' | 'lighting' | 'exposure' | 'sharpness' | 'colour';

/** One compliance check: its measured value, what the preset accepts, the verdict. */
export interface ComplianceCheck {
  name: ComplianceCheckName;
  value: number | boolean | null;
  /** A range [low, high] (high null: no upper bound, e.g. eyes_open), a boolean, or a number. */
  accepted: [number, number | null] | boolean | number;
  passed: boolean;
  note?: string;
}

export interface ComplianceReport {
  preset: string;
  passed: boolean;
  checks: ComplianceCheck[];
  /** The head as found on the output itself, output pixels; absent when the output shows no face with a mesh. */
  measured?: {
    eyes: [number, number];
    chin: number;
    crown: number | null;
    roll: number;
    axis_roll: number | null;
  };
}

export interface RemoveMeta {
  width: number;
  height: number;
  inputWidth: number;
  inputHeight: number;
  /** The model that made the mask. */
  model: string;
  /** Set when a crop/preset job found no face: the worker's model made the mask instead of `from` (the portrait model). */
  modelFallback: { from: string; reason: 'no_face' } | null;
  cropMode: 'none' | 'trim' | 'face' | 'subject';
  cropBox: [number, number, number, number] | null;
  /** The face framed (input pixels), null without crop or when none was found. */
  face: FaceMeta | null;
  /** Every face detected; null when no crop was asked. */
  faces: FaceMeta[] | null;
  /** Degrees the photo was turned (counter-clockwise) to level the eyes; null without crop. */
  rollDeg: number | null;
  /** The ID-photo checks (docs/id-photos.md#compliance); null without crop. */
  compliance: ComplianceReport | null;
  /** `run` is the model's session.run alone, part of `infer` (which adds its pre- and post-processing). */
  timingsMs: { decode: number; infer: number; run: number; post: number; encode: number; total: number };
  /** Keys the worker adds later appear here too, camelCased. */
  [key: string]: unknown;
}

export interface WorkerStats {
  rssMb: number;
  peakRssMb: number;
  jobs: number;
  [key: string]: unknown;
}

export interface RemoveResult {
  image: Buffer;
  mime: 'image/png' | 'image/webp' | 'image/jpeg';
  meta: RemoveMeta;
  /** The worker's stats after this job. */
  stats: WorkerStats;
  workerPid: number;
  /** 1, or 2+ when the job was retried after a worker died. */
  attempts: number;
  fallback: false;
}

/** With fallback: 'original', a failed request resolves with the input. */
export interface FallbackResult {
  image: Buffer;
  /** Sniffed from the input bytes. */
  mime: string | null;
  meta: null;
  stats: null;
  workerPid: null;
  attempts: number;
  fallback: true;
  error: WorkerError | TimeoutError | QueueFullError;
}

/** What remove() resolves with under fallback: 'original' when it failed. */
export interface FallbackBuffer extends Buffer {
  /** The error that caused the fallback (non-enumerable). */
  readonly pyworkerFallback: WorkerError | TimeoutError | QueueFullError;
}

export interface WorkerInfo {
  pid: number | null;
  /** retiring: on its way out (recycled, timed out, idle-stopped, closing); gone: exited, its last request settling. */
  state: 'starting' | 'idle' | 'busy' | 'retiring' | 'gone';
  jobs: number;
  rssMb: number | null;
  peakRssMb: number | null;
  model: string | null;
  threads: number | null;
  uptimeMs: number;
  maxJobs: number | null;
}

export type RecycleReason = 'memory' | 'jobs' | 'crash' | 'timeout';

export interface PoolStats {
  size: number;
  threads: number;
  closing: boolean;
  /** A worker is up and serving. */
  ready: boolean;
  queued: number;
  running: number;
  maxQueue: number;
  maxQueueBytes: number;
  memoryLimitMb: number | null;
  workers: WorkerInfo[];
  totalRssMb: number;
  submitted: number;
  completed: number;
  failed: number;
  retried: number;
  timedOut: number;
  aborted: number;
  fallbacks: number;
  queueFull: number;
  workersStarted: number;
  startFailures: number;
  /** Workers killed or crashed while starting: replaced at once, without the start-failure back-off. */
  startCrashes: number;
  /** Busy workers that missed a ping deadline (pingTimeoutMs) or were found stopped at a job timeout, killed and replaced; their jobs are retried. */
  frozen: number;
  recycled: Record<RecycleReason, number>;
  lastStartError: { code: string; message: string } | null;
  /** Remaining back-off after failed starts. */
  backoffMs: number;
}

/** A capability a worker reports in its `ready` frame (docs/protocol.md#capabilities). */
export type Capability = 'cutout' | 'id_photo' | 'heic' | 'avif';

export interface ReadyEvent {
  pid: number | null;
  model: string;
  threads: number;
  version: string;
  /** The worker's protocol version: always this package's (docs/protocol.md#versions); another one fails the start. */
  protocol: number;
  modelsAvailable: string[];
  /** What this install can do (docs/protocol.md#capabilities). */
  capabilities: Record<Capability, boolean>;
  /** Each capability this install lacks, with why and the exact command that adds it. */
  missing: Partial<Record<Capability, string>>;
  limits: {
    maxInputMb: number;
    maxPixelsSide: number;
    minPixelsSide: number;
    maxFrameMb: number;
    maxRssMb: number | null;
    maxJpegScans: number;
    maxOutputMp: number;
    maxDecodeMb: number;
  };
  rssMb: number;
}

export interface ExitEvent {
  pid: number | null;
  code: number | null;
  signal: string | null;
  /** Why: 'memory' | 'jobs' (recycled), 'idle' (idleTimeoutMs), 'shutdown', 'timeout', 'protocol_error', 'protocol_mismatch' (its `ready` announced another protocol version), 'stdout_closed', 'start_timeout', 'fatal', ... or null (it just died). */
  reason: string | null;
}

export interface RecycleEvent {
  pid: number | null;
  reason: RecycleReason;
  rssMb?: number | null;
  jobs?: number;
  code?: number | null;
  signal?: string | null;
}

// ---------------------------------------------------------------------------
// Pool

export declare class Pool extends EventEmitter {
  constructor(options?: PoolOptions);
  readonly options: NormalizedPoolOptions;
  /** Resolves when a worker is ready (starts one if lazy). Rejects with the start error, e.g. model_unavailable. */
  ready(): Promise<void>;
  /**
   * The cut-out image (or, with fallback: 'original', the input as a FallbackBuffer).
   * `image` is not copied: it is read when the job is sent to a worker, so leave it unchanged until this settles.
   */
  remove(image: Buffer | Uint8Array, options?: RemoveOptions): Promise<Buffer | FallbackBuffer>;
  /** The cut-out with the reply's meta, the worker's stats and pid. */
  removeWithMeta(image: Buffer | Uint8Array, options?: RemoveOptions): Promise<RemoveResult | FallbackResult>;
  stats(): PoolStats;
  /** Drain queued and running jobs, then stop the workers. `{force: true}`: reject them and kill the workers. */
  close(options?: { force?: boolean }): Promise<void>;

  on(event: 'ready', listener: (info: ReadyEvent) => void): this;
  on(event: 'exit', listener: (info: ExitEvent) => void): this;
  on(event: 'recycle', listener: (info: RecycleEvent) => void): this;
  /** Only emitted when listened to: start failures and crashes (the affected jobs are rejected or retried anyway). */
  on(event: 'error', listener: (err: WorkerError) => void): this;
  once(event: 'ready', listener: (info: ReadyEvent) => void): this;
  once(event: 'exit', listener: (info: ExitEvent) => void): this;
  once(event: 'recycle', listener: (info: RecycleEvent) => void): this;
  once(event: 'error', listener: (err: WorkerError) => void): this;
}

export declare function createPool(options?: PoolOptions): Pool;

// ---------------------------------------------------------------------------
// Default pool

/** Remove the background with the default pool (created on first use from PYWORKER_* variables). */
export declare function removeBackgroundBuffer(image: Buffer | Uint8Array, options?: RemoveOptions): Promise<Buffer | FallbackBuffer>;
export declare function removeBackgroundBufferWithMeta(image: Buffer | Uint8Array, options?: RemoveOptions): Promise<RemoveResult | FallbackResult>;
/** Close the default pool; the next call creates a new one. */
export declare function shutdown(options?: { force?: boolean }): Promise<void>;
/** Options of the default pool that win over the environment; call before its first use. */
export declare function configure(options: PoolOptions): void;
export declare function getDefaultPool(): Pool;
/** True when a result is the input returned by fallback: 'original' (narrows the type). */
export declare function isFallback(result: Buffer | FallbackBuffer): result is FallbackBuffer;
export declare function isFallback(result: RemoveResult | FallbackResult): result is FallbackResult;
export declare function isFallback(result: unknown): result is FallbackBuffer | FallbackResult;

// ---------------------------------------------------------------------------
// Errors

export type ProtocolErrorCode =
  | 'bad_frame'
  | 'frame_too_large'
  | 'bad_request'
  | 'unknown_op'
  | 'unsupported_format'
  | 'invalid_image'
  | 'image_too_large'
  | 'image_too_small'
  | 'image_too_complex'
  | 'input_too_large'
  | 'model_unavailable'
  | 'capability_unavailable'
  | 'no_face'
  | 'not_compliant'
  | 'internal';

/** Every code with whose fault it is, its HTTP status and origin (generated from pyworker/errors.py). */
export declare const ERROR_CODES: Readonly<
  Record<ProtocolErrorCode | ClientErrorCode | QueueErrorCode | 'job_timeout' | 'queue_full' | 'pool_closed' | 'ABORT_ERR', { fault: 'caller' | 'service'; http: number; origin: 'worker' | 'client' }>
>;

/** Codes the client adds: the worker process failed. */
export type ClientErrorCode = 'worker_crashed' | 'protocol_error' | 'start_failed';

export declare class PyworkerError extends Error {
  code: string;
}

export declare class WorkerError extends PyworkerError {
  constructor(message: string, options?: { code?: string; workerPid?: number | null; retriable?: boolean; exitCode?: number | null; signal?: string | null; attempts?: number; cause?: unknown });
  code: ProtocolErrorCode | ClientErrorCode | (string & {});
  workerPid: number | null;
  /** The job never completed on a worker (it died); it was or could be resent. */
  retriable: boolean;
  exitCode?: number | null;
  signal?: string | null;
  attempts?: number;
}

export declare class TimeoutError extends PyworkerError {
  constructor(message: string, options: { timeoutMs: number; workerPid?: number | null });
  code: 'job_timeout';
  timeoutMs: number;
  workerPid: number | null;
}

export declare class QueueFullError extends PyworkerError {
  constructor(message: string, options: { maxQueue: number; maxQueueBytes?: number });
  code: 'queue_full';
  maxQueue: number;
  /** Set when the queued bytes (maxQueueBytes), not the count, were the limit. */
  maxQueueBytes: number | null;
}

export declare class PoolClosedError extends PyworkerError {
  constructor(message?: string);
  code: 'pool_closed';
}

export declare class AbortError extends PyworkerError {
  constructor(reason?: unknown);
  name: 'AbortError';
  code: 'ABORT_ERR';
}

export declare const PROTOCOL_CODES: readonly ProtocolErrorCode[];

// ---------------------------------------------------------------------------
// Lower level

/** Encode one message as [header, ...payload parts]; a large `image` is its own part, uncopied. */
export declare function encodeFrame(message: Record<string, unknown>): Buffer[];
export declare function encodeFrameBuffer(message: Record<string, unknown>): Buffer;

export declare class FrameError extends Error {}

/** Incremental frame reader: push chunks of any size; onMessage per complete frame. */
export declare class FrameDecoder {
  constructor(options: { onMessage(message: Record<string, any>): void; onError(err: FrameError): void; maxFrameBytes?: number });
  push(chunk: Buffer): void;
  readonly pendingBytes: number;
  frames: number;
}

export declare function parseRequestOptions(options?: RemoveOptions | null): {
  wire: Record<string, unknown>;
  signal?: AbortSignal;
  timeoutMs?: number;
  fallback?: 'throw' | 'original';
};
export declare function normalizePoolOptions(options?: PoolOptions): NormalizedPoolOptions;
/** Pool options from PYWORKER_* variables. */
export declare function poolOptionsFromEnv(env?: NodeJS.ProcessEnv): PoolOptions;
/** snake_case names of the remove options this version validates. */
export declare const KNOWN_OPTIONS: readonly string[];
/** PYWORKER_* variable -> [pool option, kind]. */
export declare const ENV_VARS: Readonly<Record<string, [keyof PoolOptions, string]>>;
export declare function sniffMime(bytes: Uint8Array): string | null;

// ---------------------------------------------------------------------------
// Queue (BullMQ on Redis): lib/queue/, README "Scale-out"

/** 'expired' (a WorkerError of the queue client: an input or result no longer in Redis); 'job_lost' (its job record gone from Redis while awaited: a Redis restart); 'not_found' (batch routes: no such batch). */
export type QueueErrorCode = 'expired' | 'job_lost' | 'not_found';

export interface QueueClientOptions {
  /** redis://[user:password@]HOST:PORT[/DB] (rediss:// for TLS), or ioredis options. */
  redis: string | Record<string, unknown>;
  /** Queue name; the consumers' --queue. */
  queue: string;
  /** Results and inputs stay in Redis this long. Default 3600000 (one hour). */
  resultTtlMs?: number;
  /** From enqueue to result; then TimeoutError (a still-waiting job is removed). Default 120000. Not the pool's `jobTimeoutMs` (one run on a worker). */
  deadlineMs?: number;
  /** @deprecated the old name of `deadlineMs` (a DeprecationWarning says so once). */
  jobTimeoutMs?: number;
  /** Jobs queued and not finished (all producers) beyond which QueueFullError. Default 1000. */
  maxQueuedJobs?: number;
  /** Their input bytes beyond which QueueFullError. Default 512 MiB. */
  maxQueuedBytes?: number;
  /** One input's size, MB: larger ones reject input_too_large before anything reaches Redis (the worker's --max-input-mb; set both alike). Default 10. */
  maxInputMb?: number;
  /** Runs of a job that failed for a reason that may pass (worker crashes, start failures). Default 3. */
  attempts?: number;
  /** First back-off between runs (doubles). Default 1000. */
  backoffMs?: number;
  /** 'original': on failure resolve with the input bytes, marked as a fallback. Default 'throw'. */
  fallback?: 'throw' | 'original';
  /** Redis key prefix (BullMQ's and ours). Default 'pyworker'. */
  prefix?: string;
}

export interface QueueResult extends RemoveResult {
  /** "host:pid" of the consumer that ran the job. */
  consumer?: string;
  /** BullMQ job id. */
  jobId?: string;
}

export declare class QueueClient extends EventEmitter {
  readonly options: Required<Omit<QueueClientOptions, 'redis' | 'queue'>>;
  readonly queueName: string;
  ready(): Promise<void>;
  remove(image: Buffer | Uint8Array, options?: RemoveOptions): Promise<Buffer>;
  removeWithMeta(image: Buffer | Uint8Array, options?: RemoveOptions): Promise<QueueResult>;
  removeBatch(files: BatchFile[], options?: RemoveOptions & { concurrency?: number }): Batch;
  stats(): Promise<Record<string, number>>;
  /** Awaited jobs reject with PoolClosedError; connections close. */
  close(): Promise<void>;
}
/** Needs the optional peer `bullmq` (`npm install "bullmq@^5.81.5"`); throws naming that command when it is missing. */
export declare function createQueueClient(options: QueueClientOptions): QueueClient;

export interface QueueConsumerOptions {
  redis: string | Record<string, unknown>;
  queue: string;
  /** A Pool, or options for the consumer's own pool. */
  pool?: Pool | PoolOptions;
  /** Jobs taken at once. Default: the pool's size. */
  concurrency?: number;
  /** Job lock, renewed every half of it. Default 10000. */
  lockDurationMs?: number;
  /** How often dead consumers' jobs are looked for. Default 5000. */
  stalledIntervalMs?: number;
  /** Times a job may lose its consumer and run again. Default 1. */
  maxStalledCount?: number;
  prefix?: string;
}
export declare class QueueConsumer extends EventEmitter {
  readonly pool: Pool;
  readonly name: string;
  readonly concurrency: number;
  start(): Promise<this>;
  stats(): Record<string, unknown>;
  /** Drains: running jobs finish and are stored; then the own pool closes. */
  close(options?: { force?: boolean }): Promise<void>;
}
/** Needs the optional peer `bullmq`, like createQueueClient. */
export declare function createQueueConsumer(options: QueueConsumerOptions): QueueConsumer;

// ---------------------------------------------------------------------------
// Batches (lib/batches.js) and their Express routes and page (lib/express/batch-router.js)

export interface BatchFile {
  name: string;
  data: Buffer;
}

export interface BatchProgress {
  id: string;
  total: number;
  /** Photos finished with a result. */
  done: number;
  /** Photos finished with an error. */
  failed: number;
  finished: boolean;
}

export interface BatchProgressEvent extends BatchProgress {
  index: number;
  name: string;
  ok: boolean;
  error?: { code: string; message: string };
  meta?: Record<string, unknown>;
}

export interface BatchItem {
  index: number;
  name: string;
  bytes: number;
  status: 'queued' | 'done' | 'failed';
  result: Buffer | null;
  mime: string | null;
  meta: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

export declare class Batch extends EventEmitter {
  readonly id: string;
  readonly total: number;
  done: number;
  failed: number;
  readonly items: BatchItem[];
  /** Resolves when every photo has finished; never rejects (failures are in the items). */
  readonly finished: Promise<Batch>;
  progress(): BatchProgress;
  on(event: 'progress', listener: (e: BatchProgressEvent) => void): this;
  on(event: 'end', listener: (p: BatchProgress) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface BatchRouterOptions {
  /** Where the photos run: a Pool, or a QueueClient (its consumers on other machines). */
  remover: { removeWithMeta(image: Buffer, options?: RemoveOptions): Promise<unknown> };
  /** One upload request: all its files and zips together (413 on its Content-Length beyond). Default 100 MiB. */
  maxUploadBytes?: number;
  /** Bytes held at once by all batch uploads (bodies, then each photo until it ran); beyond, 503 + Retry-After. Default 256 MiB. */
  maxTotalBytes?: number;
  /** One photo (a zip's inflated); larger ones fail input_too_large unsent. Default: the remover's maxInputMb, else 10 MiB. */
  maxPhotoBytes?: number;
  /** Photos of one batch. Default 500. */
  maxFiles?: number;
  /** Their bytes (a zip's inflated). Default 200 MiB. */
  maxBytes?: number;
  /** Photos of one batch sent at once. Default 4. */
  concurrency?: number;
  /** How long in all a photo answered queue_full is sent again (waits 250 ms doubling to 5 s). Default 120 s. */
  queueFullWaitMs?: number;
  /** A finished batch is kept this long. Default one hour. */
  ttlMs?: number;
  /** Batches kept (running or finished); at the cap the oldest finished one is forgotten, all running: 503. Default 200. */
  maxBatches?: number;
  /**
   * Where batches (state, inputs, results) are kept across restarts: the next process answers for them and
   * resumes their unfinished photos. Default: one directory per app and user under the OS's temporary directory;
   * `false`: a directory of the process's own, removed at exit (a restart loses its batches).
   */
  storeDir?: string | false;
  /** Serve the page at GET /. Default true. */
  page?: boolean;
  /** Retry-After (seconds) of a 503, as the single-photo router's. Default 2. */
  retryAfterSeconds?: number;
}
/**
 * Express routes: POST /api/batches, GET /api/batches/:id[/events|/items/:i|/results.zip], and the page at GET /.
 * Needs express, multer and the optional peer `fflate` (zip files); throws naming the npm command when one is missing.
 */
export declare function createBatchRouter(options: BatchRouterOptions): (req: any, res: any, next: (err?: unknown) => void) => void;
