import { formatDuration, imageEndpoint, newestReportFrom, storeEndpoint, triagePageFrom } from './input.ts'
import { firstLine, isObject, parseJsonBody } from './json.ts'
import {
  DEFAULT_CA_PATH,
  MAX_DNS_FAILURES,
  MAX_TIMER_MS,
  MAX_TRIAGE_PAGES,
  NoVerdictError,
  REQUEST_TIMEOUT_MS,
  RETRY_BASE_MS,
  RETRY_MAX_MS,
  TRIAGE_PAGE_SIZE,
} from './vocabulary.ts'
import type { Io } from './io.ts'
import type { StoreSettings, TriageDecision } from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// Waiting for the store: pure classification, then a loop with injected I/O.

export interface StoreResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: string
}

/** What one request's answer means for the wait: done, wait and try again, or give up (not a Tekton step). */
export type PollOutcome =
  | { readonly kind: 'done'; readonly document: unknown }
  | {
      readonly kind: 'retry'
      readonly reason: string
      /** What Retry-After asked for; the wait is still at least RETRY_BASE_MS and at most the time left. */
      readonly delayMs?: number
      readonly backoff: boolean
      readonly notFound?: true
      /** Give up with `error` after this many such answers in a row (a host that does not resolve). */
      readonly giveUp?: { readonly after: number; readonly error: NoVerdictError }
      /** What to check when the deadline passes with this the last failure, instead of the wait's own hint. */
      readonly hint?: string
    }
  | { readonly kind: 'fail'; readonly error: NoVerdictError }

export const TLS_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
])

/** An error and its causes, outermost first (at most seven: a cause chain can loop). */
export function causeChain(error: unknown): Array<Record<string, unknown>> {
  const chain: Array<Record<string, unknown>> = []
  for (
    let current = error;
    (isObject(current) || current instanceof Error) && chain.length < 7;
    current = (current as { cause?: unknown }).cause
  ) {
    chain.push(current as Record<string, unknown>)
  }
  return chain
}

/** The string values of `field` (e.g. code, hostname) along an error's cause chain. */
export function errorField(error: unknown, field: string): string[] {
  return causeChain(error).flatMap((link) =>
    typeof link[field] === 'string' && link[field] ? [link[field] as string] : [],
  )
}

/**
 * An HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime forms). Date.parse alone takes "1.5" or "-1"
 * as dates.
 */
export const HTTP_DATE_RE = new RegExp(
  `^(?:${[
    // IMF-fixdate, Sun, 06 Nov 1994 08:49:37 GMT
    String.raw`[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT`,
    // RFC 850, Sunday, 06-Nov-94 08:49:37 GMT
    String.raw`[A-Za-z]+, \d{2}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT`,
    // asctime, Sun Nov  6 08:49:37 1994
    String.raw`[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}`,
  ].join('|')})$`,
)

/**
 * Whole seconds or an HTTP date, as milliseconds from `now` (0 for a date past); undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const header = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!header) return undefined
  if (/^\d+$/.test(header)) return Number(header) * 1_000
  const date = HTTP_DATE_RE.test(header) ? Date.parse(header) : Number.NaN
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** What a timer may be set to: Node turns anything above 2^31-1 ms (or below 0) into 1 ms. */
export function timerMs(ms: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, Math.round(ms)))
}

/**
 * How long to wait before the next try: the poll interval (jittered) after "not yet"; after a failure,
 * what Retry-After asked for, or 1 s doubling to 30 s (jittered), and never less than 1 s, so that no
 * answer can make a hot loop. The caller cuts it to the time left.
 */
export function retryDelay(
  step: Extract<PollOutcome, { kind: 'retry' }>,
  failures: number,
  pollIntervalMs: number,
  random: number,
): number {
  const jitter = 0.8 + 0.4 * random
  if (!step.backoff) return Math.round(pollIntervalMs * jitter)
  if (step.delayMs !== undefined) return Math.max(RETRY_BASE_MS, step.delayMs)
  return Math.max(RETRY_BASE_MS, Math.round(Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1)) * jitter))
}

/** A 200's body as a document, or the end of the run when it is not JSON. */
export function answered(body: string, who: string): PollOutcome {
  try {
    return { kind: 'done', document: parseJsonBody(body, `${who} answered 200 with a body that`) }
  } catch (error) {
    return { kind: 'fail', error: error as NoVerdictError }
  }
}

/** A 429 or 5xx: try again, after what Retry-After asks for or with backoff. */
export function busy(
  reason: string,
  headers: StoreResponse['headers'],
  now: number,
): Extract<PollOutcome, { kind: 'retry' }> {
  const retryAfter = parseRetryAfter(headers['retry-after'], now)
  return { kind: 'retry', reason, backoff: true, ...(retryAfter === undefined ? {} : { delayMs: retryAfter }) }
}

/** 429 and 5xx: the peer is busy or failing for now, whoever it is. */
export const isBusyStatus = (status: number) => status === 429 || status >= 500

/**
 * The one reading of an HTTP answer, whoever gave it (the store, a registry, the Kubernetes API): 200 is what
 * `accept` makes of it, 429 and 5xx wait (Retry-After, else backoff) saying what `said` describes, and anything
 * else is what `otherwise` says the peer meant.
 */
export function classifyStatus<T>(
  response: { readonly status: number; readonly headers: StoreResponse['headers'] },
  now: number,
  { accept, said, otherwise }: { readonly accept: () => T; readonly said: () => string; readonly otherwise: () => T },
): T | Extract<PollOutcome, { kind: 'retry' }> {
  if (response.status === 200) return accept()
  if (isBusyStatus(response.status)) return busy(said(), response.headers, now)
  return otherwise()
}

export function classifyResponse(response: StoreResponse, now: number): PollOutcome {
  return classifyStatus(response, now, {
    accept: () => answered(response.body, 'the store'),
    said: () =>
      `the store answered ${response.status}${response.body.trim() ? `: ${firstLine(response.body, 80)}` : ''}`,
    otherwise: () => refusedByStore(response),
  })
}

/** What the store meant by an answer that is neither data nor busy: not there yet (404), or the end of the run. */
function refusedByStore(response: StoreResponse): PollOutcome {
  const { status } = response
  if (status === 404) return { kind: 'retry', reason: 'not in the store yet (404)', backoff: false, notFound: true }
  if (status === 401) {
    return {
      kind: 'fail',
      error: new NoVerdictError(
        'TOKEN_REJECTED',
        'the store rejected the token (401 Unauthorized): check that secret metadata-store-access-token (key ' +
          'accessToken) holds a current token of the metadata-store-read-client service account ' +
          '(config/view-cluster/metadata-store-read-client.yaml)',
      ),
    }
  }
  if (status === 403) {
    return {
      kind: 'fail',
      error: new NoVerdictError(
        'TOKEN_REJECTED',
        `the token may not read images (403 Forbidden: ${firstLine(response.body)}): bind its service account to the ` +
          `metadata-store-read-only ClusterRole (config/view-cluster/metadata-store-read-client.yaml does), or, on a ` +
          `store without that role, use metadata-store-read-write-client`,
      ),
    }
  }
  const location = response.headers.location ? ` to ${String(response.headers.location)}` : ''
  return {
    kind: 'fail',
    error: new NoVerdictError(
      'STORE_ERROR',
      `the store answered ${status}${location}${response.body.trim() ? `: ${firstLine(response.body)}` : ''}: check ` +
        `--url points at the Metadata Store (METADATA_STORE_URL)`,
    ),
  }
}

/**
 * The secret (namespace metadata-store) whose ca.crt signs the host the gate talks to: the store's own
 * certificate (app-tls-cert) for the in-cluster service, the ingress's (ingress-cert) for anything else.
 */
export function caSecretFor(url: URL): 'app-tls-cert' | 'ingress-cert' {
  return /\.svc(?:\.cluster\.local)?$/.test(url.hostname) || !url.hostname.includes('.')
    ? 'app-tls-cert'
    : 'ingress-cert'
}

/**
 * What a failed request means. TLS failures end the run; a host that does not resolve (ENOTFOUND) is
 * retried MAX_DNS_FAILURES times in a row, to ride out a restart of the cluster DNS, then ends it naming
 * the host; other network errors are retried until the deadline.
 */
/** Who the gate talks to, for the messages of classifyError; `hints` are absent for the store. */
export interface Peer {
  readonly baseUrl: URL
  readonly proxied: boolean
  readonly ca?: { readonly origin: string }
  readonly hints?: PeerHints
}

/** How messages name a peer other than the store, and what to check when TLS or DNS fails. */
export interface PeerHints {
  readonly name: string
  readonly tls: string
  readonly dns: string
}

export function classifyError(error: unknown, peer: Peer): Exclude<PollOutcome, { kind: 'done' }> {
  if (error instanceof NoVerdictError) return { kind: 'fail', error }
  const codes = errorField(error, 'code')
  const tlsCode = codes.find(
    (code) => TLS_ERROR_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'),
  )
  const host = peer.baseUrl.hostname
  if (tlsCode) {
    const secret = caSecretFor(peer.baseUrl)
    const hint =
      peer.hints?.tls ??
      (peer.ca
        ? `either ${peer.ca.origin} is not the CA for ${host} (for this URL it is secret ${secret} in namespace ` +
          `metadata-store, key ca.crt, copied into secret metadata-store-cert, key caCrt), or ${host} is not in the ` +
          `store's certificate`
        : `no CA was given and ${DEFAULT_CA_PATH} does not exist: in the Task, create secret metadata-store-cert ` +
          `(key caCrt) in this namespace from secret ${secret} in namespace metadata-store, key ca.crt (the Task ` +
          `mounts it there); elsewhere pass the store's CA with --ca-cert or METADATA_STORE_CA_CERT`)
    // Node's own advice (--use-system-ca) does not apply: the image has no system store to add, and the CA is the fix.
    const said = String((error as Error).message)
      .replace(/[.;,]?\s*[^.;]*--use-system-ca[^.;]*[.;]?/gi, '')
      .trim()
    return {
      kind: 'fail',
      error: new NoVerdictError(
        'TLS',
        `TLS with ${peer.hints?.name ?? 'the store'} failed (${tlsCode}: ${said}): ${hint}`,
        { cause: error },
      ),
    }
  }
  if (codes.includes('ENOTFOUND')) {
    const unresolved = errorField(error, 'hostname')[0] ?? host
    const check = peer.proxied
      ? `check HTTPS_PROXY (the proxy resolves ${host}) and ${peer.hints?.dns ?? '--url'}`
      : `check ${peer.hints?.dns ?? '--url (METADATA_STORE_URL)'} and, in a pod, the cluster DNS`
    return {
      kind: 'retry',
      reason: `cannot resolve host ${unresolved} (ENOTFOUND)`,
      backoff: true,
      giveUp: {
        after: MAX_DNS_FAILURES,
        error: new NoVerdictError(
          'DNS',
          `host ${unresolved} does not resolve (ENOTFOUND, ${MAX_DNS_FAILURES} tries in a row): ${check}`,
          { cause: error },
        ),
      },
    }
  }
  const connection = codes.find((code) => CONNECTION_FAILURES[code])
  if (connection) {
    // Nothing answers at all: no scan or observer is to blame; say what failed, and keep trying until the deadline.
    const port = peer.baseUrl.port || '443'
    return {
      kind: 'retry',
      reason: `connection to ${host}:${port} ${CONNECTION_FAILURES[connection]} (${connection})`,
      backoff: true,
      hint: peer.hints
        ? `Nothing answered at ${host}:${port}: check that ${peer.hints.name} runs there and that no network policy ` +
          `blocks this namespace`
        : `Nothing answered at ${host}:${port}: check the store's Service (kubectl get svc -n metadata-store), the ` +
          `Task's metadata-store-url param (workload param policy_metadata_store_url) and any NetworkPolicy between ` +
          `this namespace and the store's`,
    }
  }
  const code = codes[0] ?? (error as Error)?.name ?? 'error'
  return {
    kind: 'retry',
    reason: `request failed (${code}: ${(error as Error)?.message ?? String(error)})`,
    backoff: true,
  }
}

/** Network errors that mean nothing answered at the address, as a log line says them. */
export const CONNECTION_FAILURES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EHOSTUNREACH: 'unreachable (no route to the host)',
  ENETUNREACH: 'unreachable (no route to the network)',
  UND_ERR_CONNECT_TIMEOUT: 'timed out',
}

/** What a wait needs of the run's Io (the clock, sleep, jitter, signal, blocking work), and the request it repeats. */
export interface WaitDeps extends Pick<Io, 'now' | 'sleep' | 'random' | 'signal' | 'blocking'> {
  readonly fetch: (url: URL, signal: AbortSignal) => Promise<StoreResponse>
  readonly progress: (line: string) => void
  /** Every request of one run shares the --timeout that started then. */
  readonly started: number
}

export type Acceptance<T> =
  { readonly ready: true; readonly value: T } | { readonly ready: false; readonly reason: string }

/** One resource to poll: `accept` judges a 200's JSON; a 404 means "not yet" or, for optional endpoints, "absent". */
export interface Poll<T> {
  readonly url: URL
  /** For messages: "sha256:… in the store". */
  readonly what: string
  readonly onNotFound: 'wait' | 'absent'
  readonly accept: (document: unknown) => Acceptance<T>
  /** Says more about a "not yet" (what the scan is doing); never throws, undefined when it has nothing. */
  readonly explain?: ((signal: AbortSignal) => Promise<string | undefined>) | undefined
}

/** One try's result: the value, or what the answer means for the wait. */
export type Step<T> = { readonly kind: 'accepted'; readonly value: T } | Exclude<PollOutcome, { kind: 'done' }>

/** Something to try until it succeeds, fails for good, or the run's deadline passes. */
export interface Attempts<T> {
  /** For messages: "sha256:… in the store". */
  readonly what: string
  /** Said after "timed out": where to look. */
  readonly timeoutHint: string
  /** A 404 means "not yet" (wait) or, for optional things, "absent" (undefined). */
  readonly onNotFound: 'wait' | 'absent'
  readonly attempt: (signal: AbortSignal) => Promise<Step<T>>
  /**
   * For a request that waits on purpose (a watch): what it last heard, said instead of "no answer" when time runs out.
   */
  readonly heard?: () => string
}

/** Who answers and how long the run may wait for it. */
export type Timing = Pick<StoreSettings, 'timeoutMs' | 'pollIntervalMs'>

/**
 * Tries until `attempt` is accepted, fails, or the run's deadline passes (NoVerdictError TIMEOUT). Not-yet
 * answers wait the poll interval; 429, 5xx and network errors back off (retryDelay), never past the deadline.
 */
export async function retryUntil<T>(
  attempts: Attempts<T>,
  peer: Peer & Timing,
  deps: Omit<WaitDeps, 'fetch'>,
): Promise<T | undefined> {
  const deadline = deps.started + peer.timeoutMs
  let lastReason = 'no answer yet'
  let lastHint: string | undefined
  let failures = 0
  let repeated = 0
  for (let attempt = 1; ; attempt++) {
    const remaining = deadline - deps.now()
    if (remaining <= 0) {
      throw new NoVerdictError(
        'TIMEOUT',
        `timed out after ${formatDuration(peer.timeoutMs)} waiting for ${attempts.what} (${attempt - 1} requests; ` +
          `last: ${lastReason}). ${lastHint ?? attempts.timeoutHint}`,
      )
    }
    const requestMs = Math.min(REQUEST_TIMEOUT_MS, remaining)
    const requestSignal = AbortSignal.any([deps.signal, AbortSignal.timeout(timerMs(requestMs))])
    let step: Step<T>
    try {
      step = await attempts.attempt(requestSignal)
    } catch (error) {
      if (deps.signal.aborted) throw deps.signal.reason
      step = requestSignal.aborted
        ? {
            kind: 'retry',
            reason: attempts.heard?.() || `no answer within ${formatDuration(requestMs)}`,
            backoff: true,
          }
        : classifyError(error, peer)
    }
    if (step.kind === 'accepted') {
      if (attempt > 1 || attempts.onNotFound === 'wait')
        deps.progress(
          `found ${attempts.what}; attempt ${attempt}, ${formatDuration(deps.now() - deps.started)} elapsed`,
        )
      return step.value
    }
    if (step.kind === 'fail') throw step.error
    if (step.notFound && attempts.onNotFound === 'absent') return undefined
    repeated = step.giveUp ? repeated + 1 : 0
    if (step.giveUp && repeated >= step.giveUp.after) throw step.giveUp.error
    lastReason = step.reason
    lastHint = step.hint
    failures = step.backoff ? failures + 1 : 0
    const left = Math.max(0, deadline - deps.now())
    const wait = Math.min(retryDelay(step, failures, peer.pollIntervalMs, deps.random()), left)
    deps.progress(
      `${step.reason}; attempt ${attempt}, ${formatDuration(deps.now() - deps.started)} elapsed, ` +
        `${formatDuration(left)} left; next try in ${formatDuration(wait)}`,
    )
    await deps.sleep(timerMs(wait), deps.signal)
  }
}

/** Polls one store resource until `accept` is satisfied (see retryUntil). */
export async function pollStore<T>(poll: Poll<T>, store: StoreSettings, deps: WaitDeps): Promise<T | undefined> {
  return retryUntil(
    {
      what: poll.what,
      timeoutHint: 'If the scan ran, check the AMR observer (see docs/operations.md, Troubleshooting)',
      onNotFound: poll.onNotFound,
      attempt: async (signal) => {
        const response = await deps.fetch(poll.url, signal)
        const step = deps.blocking((): Step<T> => {
          const classified = classifyResponse(response, deps.now())
          if (classified.kind !== 'done') return classified
          const accepted = poll.accept(classified.document)
          return accepted.ready
            ? { kind: 'accepted', value: accepted.value }
            : { kind: 'retry', reason: accepted.reason, backoff: false }
        })
        const more =
          step.kind === 'retry' && step.notFound && poll.onNotFound === 'wait'
            ? await poll.explain?.(signal)
            : undefined
        return more && step.kind === 'retry' ? { ...step, reason: `${step.reason}; ${more}` } : step
      },
    },
    store,
    deps,
  )
}

export const ready = <T>(value: T): Acceptance<T> => ({ ready: true, value })

/** The Image document of the digest, once the store has it. */
export async function waitForImageReport(
  store: StoreSettings,
  digest: string,
  deps: WaitDeps,
  explain?: Poll<unknown>['explain'],
): Promise<unknown> {
  return pollStore(
    {
      url: imageEndpoint(store.baseUrl, digest),
      what: `${digest} in the store`,
      onNotFound: 'wait',
      accept: ready,
      explain,
    },
    store,
    deps,
  )
}

/** Waits until the store holds a scan report for the digest generated at or after `newerThan`. */
export async function waitForFreshReport(
  store: StoreSettings,
  digest: string,
  newerThan: number,
  deps: WaitDeps,
): Promise<void> {
  const since = new Date(newerThan).toISOString()
  await pollStore(
    {
      url: storeEndpoint(store.baseUrl, '/api/v1/reports', { digest, ordering: 'DESC', page_size: '20' }),
      what: `a scan report of ${digest} generated at or after ${since}`,
      onNotFound: 'wait',
      accept: (document) => {
        const newest = newestReportFrom(document)
        if (newest !== undefined && newest >= newerThan) return ready(newest)
        return {
          ready: false,
          reason:
            newest === undefined
              ? 'no scan report yet'
              : `the newest scan report was generated ${new Date(newest).toISOString()}, before ${since}`,
        }
      },
    },
    store,
    deps,
  )
}

/** Every triage decision the store holds for the digest, page by page; undefined when it has no triage endpoint. */
export async function fetchTriage(
  store: StoreSettings,
  digest: string,
  deps: WaitDeps,
): Promise<TriageDecision[] | undefined> {
  const decisions: TriageDecision[] = []
  for (let page = 1; page <= MAX_TRIAGE_PAGES; page++) {
    const url = storeEndpoint(store.baseUrl, '/api/v1/triage', {
      digest,
      page: String(page),
      page_size: String(TRIAGE_PAGE_SIZE),
    })
    const result = await pollStore(
      {
        url,
        what: `triage page ${page} of ${digest}`,
        onNotFound: 'absent',
        accept: (document) => ready(triagePageFrom(document)),
      },
      store,
      deps,
    )
    if (!result) return page === 1 ? undefined : decisions
    decisions.push(...result.decisions)
    if (page >= result.lastPage || result.records === 0) return decisions
  }
  return decisions
}
