// Types for asyncops.js (issue 12): the JavaScript client of the asyncops
// HTTP API. See docs/browser.md.

export type OpState = "pending" | "processing" | "completed" | "rejected" | "failed" | "canceled";

/** An operation as the API shows it (docs/openapi.yaml, Operation). */
export interface Operation {
  id: string;
  name: string;
  service: string;
  state: OpState;
  /** null until terminal; then "success" when completed, else the reason (e.g. "email_in_use"). */
  code: string | null;
  message: string | null;
  resource: string;
  origin: string;
  owner: string;
  retry_of: string | null;
  attempt: number;
  done: boolean;
  cancel_requested: boolean;
  created_at: string;
  updated_at: string;
  /** Only from get() (GET /operations/{id}): the request as accepted, and more. */
  request?: { method: string; path: string; body: unknown };
  params?: Record<string, string>;
  worker?: string | null;
  retries?: string[];
  [k: string]: unknown;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  [k: string]: unknown;
}

export type Transport = "websocket" | "sse" | "poll";

export interface AsyncOpsOptions {
  /** The daemon's base URL; default: the page's origin. */
  url?: string;
  /** An API token (sent as Authorization: Bearer; streams get a single-use ticket). */
  token?: string;
  /** Or a function that returns the token (may be async). */
  tokenFactory?: () => string | Promise<string>;
  /** The order of transports to try; default ["websocket", "sse", "poll"]. */
  transports?: Transport[];
  /** A WebSocket class; default globalThis.WebSocket (in Node < 22 pass one, e.g. from "ws"). */
  WebSocket?: unknown;
  /** A fetch function; default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Reconnects of one transport after a drop before trying the next; default 3. */
  retries?: number;
  /** The ?wait=N of long-polling, in seconds; default 30. */
  pollWait?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface SubmitOptions {
  signal?: AbortSignal;
  idempotencyKey?: string;
  /** Called with the operation after each change (and with the 202's operation first). */
  onUpdate?: (op: Operation) => void;
}

export interface WatchFilter {
  state?: OpState;
  name?: string;
}

export interface WatchOptions {
  signal?: AbortSignal;
  /**
   * Called each time a transport has subscribed (again after a reconnect):
   * the WebSocket's {"subscribed": ...} reply, the /events response, or the
   * first poll's answer. Every change committed after it is delivered, so a
   * list() read once the watch is ready misses nothing in between.
   */
  onReady?: () => void;
}

export interface WatchHandle {
  /** The transport in use: "websocket", "sse" or "poll". */
  readonly transport: Transport | null;
  close(): void;
}

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  readonly code: string | null;
}

export function isTerminal(state: string): boolean;

export class AsyncOps {
  constructor(options?: AsyncOpsOptions);
  readonly url: string;
  /** The transport the last follow() used. */
  lastTransport: Transport | null;
  request(method: string, path: string, body?: unknown, options?: RequestOptions):
    Promise<{ status: number; headers: Headers; body: any }>;
  get(id: string, options?: RequestOptions): Promise<Operation>;
  list(query?: Record<string, string | number | undefined>, options?: RequestOptions):
    Promise<{ items: Operation[]; next_cursor?: string | null }>;
  cancel(id: string, options?: RequestOptions): Promise<Operation>;
  forget(id: string, options?: RequestOptions): Promise<unknown>;
  workers(options?: RequestOptions): Promise<unknown[]>;
  /** A single-use stream ticket (POST /tickets), valid for 60 s. */
  ticket(options?: RequestOptions): Promise<string>;
  /** Sends a command; resolves to the final operation, followed by push. */
  submit(method: string, path: string, body?: unknown, options?: SubmitOptions): Promise<Operation>;
  /**
   * Resolves once the operation is terminal. onUpdate gets each change once;
   * last is the operation as the caller knows it (not reported again).
   */
  follow(id: string, options?: { signal?: AbortSignal; onUpdate?: (op: Operation) => void; last?: Operation }):
    Promise<Operation>;
  /** Follows every operation matching filter until close(). seq is null when polling. */
  watch(filter: WatchFilter | null, onChange: (op: Operation, seq: number | null) => void,
        options?: WatchOptions): WatchHandle;
}

export default AsyncOps;
