import { join } from 'node:path'
import { configFileLimits } from './files.ts'
import { bearerFetch, bearerHeaders, connect, redactedAnswer } from './http.ts'
import { parseInstant, parseOciRef, checkToken, formatDuration } from './input.ts'
import type { BodyLimits, Io, RunContext } from './io.ts'
import { describeJson, firstLine, isObject, parseJson, textOf } from './json.ts'
import { checkCa } from './options.ts'
import { DEFAULT_SERVICE_ACCOUNT_DIR, MAX_CONFIG_FILE_BYTES, NoVerdictError, UsageError } from './vocabulary.ts'
import type { Environment, ImageRef, OciRef, StoreSettings } from './vocabulary.ts'
import { answered, classifyStatus, retryUntil } from './wait.ts'
import type { Peer, Poll, PollOutcome, Step, StoreResponse, Timing, WaitDeps } from './wait.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: following an ImageVulnerabilityScan (SCST - Scan 2.0)

export const SCAN_API = '/apis/app-scanning.apps.tanzu.vmware.com/v1alpha1'

/** Where the image's newest ImageVulnerabilityScan stands. */
export type ScanState =
  | { readonly kind: 'none' }
  | { readonly kind: 'running'; readonly name: string; readonly detail: string }
  | { readonly kind: 'succeeded'; readonly name: string; readonly result: string; readonly since?: number }
  | { readonly kind: 'failed'; readonly name: string; readonly reason: string; readonly message: string }

/** The digest an image reference ends with, lower-cased; undefined when it has none. */
export function digestOfReference(value: unknown): string | undefined {
  return typeof value === 'string' ? /@(sha256:[0-9a-f]{64})$/i.exec(value.trim())?.[1]?.toLowerCase() : undefined
}

/**
 * The newest scan of `digest` in an ImageVulnerabilityScanList (by spec.image or status.scannedImage), and
 * its state from the Succeeded condition: True with status.scanResult, False with the scan's reason, or
 * still running (Unknown, or blank: with a Tekton version Scan 2.0 does not support the conditions stay blank).
 */
export function scanStateOf(list: unknown, digest: string): ScanState {
  const fail = (detail: string) =>
    new NoVerdictError('MALFORMED_RESPONSE', `the ImageVulnerabilityScan list is malformed: ${detail}`)
  if (!isObject(list) || !Array.isArray(list.items)) throw fail('items is not a list')
  let newest: { scan: Record<string, unknown>; name: string; created: string } | undefined
  for (const item of list.items) {
    if (!isObject(item)) throw fail(`an item is ${describeJson(item)}`)
    const spec = isObject(item.spec) ? item.spec : {}
    const status = isObject(item.status) ? item.status : {}
    if (digestOfReference(spec.image) !== digest && digestOfReference(status.scannedImage) !== digest) continue
    const metadata = isObject(item.metadata) ? item.metadata : {}
    const name = textOf(metadata.name) || '(unnamed)'
    const created = textOf(metadata.creationTimestamp)
    if (!newest || created > newest.created || (created === newest.created && name > newest.name))
      newest = { scan: item, name, created }
  }
  if (!newest) return { kind: 'none' }
  const { scan, name } = newest
  const status = isObject(scan.status) ? scan.status : {}
  const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isObject) : []
  const succeeded = conditions.find((condition) => condition.type === 'Succeeded')
  const said = (condition: Record<string, unknown>) =>
    [textOf(condition.reason), textOf(condition.message)].filter(Boolean).join(': ')
  if (succeeded?.status === 'False')
    return {
      kind: 'failed',
      name,
      reason: textOf(succeeded.reason) || 'Failed',
      message: textOf(succeeded.message) || 'no message',
    }
  if (succeeded?.status === 'True') {
    const result = textOf(status.scanResult)
    if (!result) return { kind: 'running', name, detail: 'Succeeded, but status.scanResult is empty yet' }
    const since = parseInstant(textOf(succeeded.lastTransitionTime))
    return { kind: 'succeeded', name, result, ...(since === undefined ? {} : { since }) }
  }
  const completed = conditions.find((condition) => condition.type === 'ScanCompleted')
  const latest = succeeded ?? completed
  if (!latest)
    return {
      kind: 'running',
      name,
      detail: 'no conditions yet (if they stay blank, check that the installed Tekton is one Scan 2.0 supports)',
    }
  return {
    kind: 'running',
    name,
    detail: `${String(latest.type)} ${String(latest.status)}${said(latest) ? ` (${said(latest)})` : ''}`,
  }
}

/**
 * What a Kubernetes API answer means when listing scans: only 200 is data; 429 and 5xx wait; the rest end the run with
 * what to fix.
 */
export function classifyKubernetesResponse(response: StoreResponse, namespace: string, now: number): PollOutcome {
  return classifyStatus(response, now, {
    accept: () => answered(response.body, 'the Kubernetes API'),
    said: () => `the Kubernetes API answered ${response.status}`,
    otherwise: () => refusedByKubernetes(response, namespace),
  })
}

function refusedByKubernetes(response: StoreResponse, namespace: string): PollOutcome {
  const { status } = response
  const fix =
    status === 401
      ? "the pod's service-account token was rejected"
      : status === 403
        ? `the Task's service account may not list imagevulnerabilityscans in ${namespace}: provision the namespace ` +
          `with config/developer-namespace/ (Namespace Provisioner), or bind Role amr-policy-gate-scan-reader to the ` +
          `service account`
        : status === 404
          ? 'the ImageVulnerabilityScan API (app-scanning.apps.tanzu.vmware.com/v1alpha1) is not installed: SCST - ' +
            'Scan 2.0 is needed for --scan-result auto'
          : 'check the cluster'
  let detail = ''
  try {
    const body = parseJson(response.body) as { message?: unknown }
    if (typeof body.message === 'string') detail = ` (${firstLine(body.message, 160)})`
  } catch {}
  return {
    kind: 'fail',
    error: new NoVerdictError('KUBERNETES_ERROR', `the Kubernetes API answered ${status}${detail}: ${fix}`),
  }
}

/** What one look at the image's scans found: its state, or what the answer means for the wait. */
export type ScanLook = Exclude<PollOutcome, { kind: 'done' }> | { readonly kind: 'state'; readonly state: ScanState }

/**
 * The ImageVulnerabilityScans of the pod's namespace as its service account sees them: one connection, asked of any
 * digest.
 */
export interface ScanList {
  readonly namespace: string
  readonly peer: Peer & Timing
  /** One list: where the scan of `digest` stands. */
  readonly check: (signal: AbortSignal, digest: string) => Promise<ScanLook>
  /**
   * Lists, then watches from the list's resourceVersion: resolves as soon as the scan of `digest` has
   * succeeded or failed, or when the watch ends (a retry: the next call watches on, or lists again after
   * 410 Gone). `onChange` hears each other state.
   */
  readonly follow: (signal: AbortSignal, digest: string, onChange: (state: ScanState) => void) => Promise<ScanLook>
}

/** How long the store's poll waits for a look at the scan, for its progress line. */
export const EXPLAIN_TIMEOUT_MS = 5_000

/** The server ends each watch after this long, before undici's 60 s idle limit would. */
export const WATCH_SECONDS = 45

export const isSettled = (state: ScanState) => state.kind === 'succeeded' || state.kind === 'failed'

/** A list's objects, kept current by the watch that follows it (kubernetes-client's ListWatch cache, in small). */
export interface ObjectCache {
  /** Where the next watch starts: the list's, then each event's. */
  readonly resourceVersion: string
  readonly items: () => unknown[]
  /**
   * One watch event (a line of JSON): `changed` when an object was added, modified or deleted, `unchanged` for a
   * bookmark or a type this version does not know, `gone` when the server has forgotten the version (410:
   * list again). Any other ERROR, or a line that is not JSON, ends the run.
   */
  readonly apply: (line: string) => 'changed' | 'unchanged' | 'gone'
}

export function objectCache(list: { readonly items: readonly unknown[] }): ObjectCache {
  const versionOf = (object: unknown) =>
    isObject(object) && isObject(object.metadata) ? textOf(object.metadata.resourceVersion) : ''
  const nameOf = (object: unknown) =>
    isObject(object) && isObject(object.metadata) ? textOf(object.metadata.name) : ''
  const byName = new Map(list.items.map((item) => [nameOf(item), item]))
  let resourceVersion = versionOf(list)
  return {
    get resourceVersion() {
      return resourceVersion
    },
    items: () => [...byName.values()],
    apply(line) {
      let event: unknown
      try {
        event = parseJson(line)
      } catch {
        throw new NoVerdictError(
          'MALFORMED_RESPONSE',
          `a watch event of the Kubernetes API is not JSON: "${firstLine(line, 80)}"`,
        )
      }
      const type = isObject(event) ? event.type : undefined
      const object = isObject(event) ? event.object : undefined
      if (type === 'ERROR') {
        if (isObject(object) && object.code === 410) return 'gone'
        throw new NoVerdictError(
          'KUBERNETES_ERROR',
          `the watch of ImageVulnerabilityScans failed: ` +
            `${firstLine(textOf(isObject(object) ? object.message : '') || JSON.stringify(object ?? null), 160)}`,
        )
      }
      if (versionOf(object)) resourceVersion = versionOf(object)
      if (type === 'DELETED') byName.delete(nameOf(object))
      else if (type === 'ADDED' || type === 'MODIFIED') byName.set(nameOf(object), object)
      else return 'unchanged'
      return 'changed'
    },
  }
}

/**
 * The ImageVulnerabilityScans of the pod's namespace through its service account: a list for one look, a list
 * then a watch from its resourceVersion (objectCache) to follow one image's scan until it settles.
 */
export async function openScanList(
  selector: string | undefined,
  timing: Timing & { readonly proxied: boolean },
  ctx: RunContext,
): Promise<ScanList> {
  const { config, run, output, io } = ctx
  const api = await kubernetesApi(io, timing, run.deadline)
  output.secrets.push(api.token)
  const url = new URL(
    `${SCAN_API}/namespaces/${encodeURIComponent(api.namespace)}/imagevulnerabilityscans`,
    api.baseUrl,
  )
  if (selector) url.searchParams.set('labelSelector', selector)
  const client = await connect(run, io, api)
  const fetch = bearerFetch(client, api, config.maxBodyBytes)
  const list = async (signal: AbortSignal, digest: string) => {
    const response = await fetch(url, signal)
    return io.blocking(() => {
      const classified = classifyKubernetesResponse(response, api.namespace, io.now())
      return classified.kind === 'done'
        ? { kind: 'listed' as const, document: classified.document, state: scanStateOf(classified.document, digest) }
        : classified
    })
  }
  // What the watch knows between calls: the scans, and where to watch from; none until listed, or after 410 Gone.
  let cache: ObjectCache | undefined
  const lineLimits: BodyLimits = {
    maxBytes: MAX_CONFIG_FILE_BYTES,
    tooLarge: () =>
      new NoVerdictError(
        'MALFORMED_RESPONSE',
        `a watch event of the Kubernetes API is larger than ${MAX_CONFIG_FILE_BYTES / 1024} KiB`,
      ),
  }
  return {
    namespace: api.namespace,
    peer: {
      ...api,
      hints: {
        name: 'the Kubernetes API',
        tls: `the service account's ca.crt does not sign ${api.baseUrl.hostname}`,
        dns: 'KUBERNETES_SERVICE_HOST',
      },
    },
    async check(signal, digest) {
      const listed = await list(signal, digest)
      return listed.kind === 'listed' ? { kind: 'state', state: listed.state } : listed
    },
    async follow(signal, digest, onChange) {
      if (!cache?.resourceVersion) {
        const listed = await list(signal, digest)
        if (listed.kind !== 'listed') return listed
        cache = objectCache(listed.document as { items: unknown[] })
        if (isSettled(listed.state) || !cache.resourceVersion) return { kind: 'state', state: listed.state }
        onChange(listed.state)
      }
      const watched = cache
      const watch = new URL(url)
      const watchParams: ReadonlyArray<readonly [string, string]> = [
        ['watch', '1'],
        ['allowWatchBookmarks', 'true'],
        ['timeoutSeconds', String(WATCH_SECONDS)],
        ['resourceVersion', watched.resourceVersion],
      ]
      for (const [name, value] of watchParams) watch.searchParams.set(name, value)
      let settled: ScanState | undefined
      let gone = false
      const response = await client.lines(watch, bearerHeaders(api.token), signal, lineLimits, (line) => {
        const change = watched.apply(line)
        if (change === 'gone') gone = true
        if (change !== 'changed') return change === 'unchanged'
        const state = scanStateOf({ items: watched.items() }, digest)
        if (isSettled(state)) {
          settled = state
          return false
        }
        onChange(state)
        return true
      })
      if (response.status === 410) gone = true
      else if (response.status !== 200) {
        const classified = classifyKubernetesResponse(
          redactedAnswer(response, api.token, lineLimits),
          api.namespace,
          io.now(),
        )
        if (classified.kind !== 'done') return classified
      }
      if (settled) return { kind: 'state', state: settled }
      if (gone) cache = undefined
      return {
        kind: 'retry',
        reason: gone
          ? 'the watch fell behind (410 Gone): listing again'
          : `the watch ended after ${WATCH_SECONDS}s: watching on`,
        backoff: false,
      }
    },
  }
}

/**
 * --scan-result auto: the reference of the results the image's newest ImageVulnerabilityScan published,
 * once it has succeeded, read from the Kubernetes API with the pod's service account. A failed scan ends
 * the run at once (exit 3, the scan's reason); a scan that never finishes ends at the deadline.
 */
export async function followScan(
  image: ImageRef,
  scans: ScanList,
  ctx: RunContext,
  deps: Omit<WaitDeps, 'fetch'>,
): Promise<OciRef> {
  const { config, run, output } = ctx
  run.phase = 'waiting for the scan'
  let lastSaid = ''
  output.say(
    `following the ImageVulnerabilityScan of ${image.reference} in namespace ` +
      `${scans.namespace}${config.scanSelector ? ` (${config.scanSelector})` : ''} (waiting up to ` +
      `${formatDuration(config.timeoutMs)})`,
  )
  const found = await retryUntil(
    {
      what: `a finished scan of ${image.digest} in namespace ${scans.namespace}`,
      timeoutHint: `See kubectl get imagevulnerabilityscans -n ${scans.namespace} -o wide`,
      onNotFound: 'wait',
      attempt: async (signal): Promise<Step<{ name: string; result: string }>> => {
        const step = await scans.follow(signal, image.digest, (state) => {
          const said = describeScan(state, image.digest, deps.now(), 'the scan')
          if (said !== lastSaid) deps.progress((lastSaid = said))
        })
        if (step.kind !== 'state') return step
        const { state } = step
        if (state.kind === 'succeeded') return { kind: 'accepted', value: state }
        if (state.kind === 'failed') return { kind: 'fail', error: scanFailed(state, image.digest, scans.namespace) }
        return { kind: 'retry', reason: describeScan(state, image.digest, deps.now(), 'the scan'), backoff: false }
      },
      heard: () => lastSaid,
    },
    scans.peer,
    deps,
  )
  try {
    return parseOciRef(found!.result, `status.scanResult of ${found!.name}`)
  } catch (error) {
    throw new NoVerdictError('MALFORMED_RESPONSE', (error as Error).message.split(': use ')[0]!)
  }
}

/** Where the pod's service account is mounted. */
export const serviceAccountDir = (env: Environment['env']) =>
  env.POLICY_SERVICE_ACCOUNT_DIR?.trim() || DEFAULT_SERVICE_ACCOUNT_DIR

/**
 * What the image's scan is doing, for the store's "not yet" lines; it gives up quietly after one failure to list scans.
 */
export async function scanExplainer(
  image: ImageRef,
  selector: string | undefined,
  store: StoreSettings,
  ctx: RunContext,
): Promise<Poll<unknown>['explain']> {
  const { run, output, io } = ctx
  const dir = serviceAccountDir(io.env)
  if (!io.env.KUBERNETES_SERVICE_HOST?.trim() || !io.files.fileExists(join(dir, 'token'))) return undefined
  let scans: ScanList
  try {
    scans = await openScanList(selector, store, ctx)
  } catch (error) {
    if (run.deadline.aborted) throw error
    output.say(
      `cannot follow the image's scan (${(error as Error).message}): progress shows only what the store answers`,
    )
    return undefined
  }
  let working = true
  const giveUp = (why: string) => {
    working = false
    output.say(`cannot follow the image's scan (${why}): progress shows only what the store answers`)
  }
  return async (signal) => {
    if (!working) return undefined
    let step: ScanLook
    try {
      // A side look: it may not hold up the store's poll for long.
      step = await scans.check(AbortSignal.any([signal, AbortSignal.timeout(EXPLAIN_TIMEOUT_MS)]), image.digest)
    } catch (error) {
      if (signal.aborted) throw error
      giveUp(error instanceof Error ? error.message : String(error))
      return undefined
    }
    // A failed scan never reaches the store: waiting on would only run out the clock.
    if (step.kind === 'state' && step.state.kind === 'failed')
      throw scanFailed(step.state, image.digest, scans.namespace)
    if (step.kind === 'state') return describeScan(step.state, 'the image', io.now(), 'the store')
    giveUp(step.kind === 'fail' ? step.error.message : step.reason)
    return undefined
  }
}

/** The image's scan failed: no verdict, with the scan's own reason and where to look. */
export function scanFailed(
  state: Extract<ScanState, { kind: 'failed' }>,
  digest: string,
  namespace: string,
): NoVerdictError {
  return new NoVerdictError(
    'SCAN_FAILED',
    `scan ${state.name} of ${digest} failed (${state.reason}: ${state.message}): see kubectl describe ` +
      `imagevulnerabilityscan ${state.name} -n ${namespace}`,
  )
}

/**
 * The image's scan, in a progress line: while the gate follows it (--scan-result auto), or while it waits for the
 * store, which then adds what the state means for the store.
 */
export function describeScan(
  state: ScanState,
  image: string,
  now: number,
  waitingFor: 'the scan' | 'the store',
): string {
  const forStore = waitingFor === 'the store'
  switch (state.kind) {
    case 'none':
      return `no ImageVulnerabilityScan of ${image} yet: the scan has not started`
    case 'running':
      return `scan ${state.name} is not done: ${state.detail}`
    case 'failed':
      return (
        `scan ${state.name} failed (${state.reason}: ` +
        `${state.message})${forStore ? ': the store will not receive this scan' : ''}`
      )
    case 'succeeded': {
      const ago = state.since === undefined ? '' : ` ${formatDuration(Math.max(0, now - state.since))} ago`
      return (
        `scan ${state.name} ` +
        `succeeded${ago}${forStore ? '; the store has not received it yet: the AMR Observer is behind or down' : ''}`
      )
    }
  }
}

/**
 * The Kubernetes API as a pod sees it: KUBERNETES_SERVICE_HOST and _PORT, and the service account's token, CA and
 * namespace.
 */
export async function kubernetesApi(
  io: Io,
  timing: Timing & { readonly proxied: boolean },
  signal: AbortSignal,
): Promise<StoreSettings & { namespace: string }> {
  const host = io.env.KUBERNETES_SERVICE_HOST!.trim()
  const port = io.env.KUBERNETES_SERVICE_PORT?.trim() || '443'
  let baseUrl: URL
  try {
    baseUrl = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`)
  } catch {
    throw new UsageError(
      'KUBERNETES',
      `KUBERNETES_SERVICE_HOST "${host}" and KUBERNETES_SERVICE_PORT "${port}" make no URL`,
    )
  }
  const dir = serviceAccountDir(io.env)
  const read = (name: string, what: string) =>
    io.files.read(join(dir, name), what, { signal, limits: configFileLimits(what), showPath: name !== 'token' })
  const token = checkToken(await read('token', "the service account's token"), `${dir}/token`)
  const pem = checkCa(
    await read('ca.crt', "the service account's CA"),
    `${dir}/ca.crt`,
    'the cluster CA (ca.crt of the service account)',
  )
  const namespace = (await read('namespace', "the pod's namespace")).trim()
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace))
    throw new UsageError('KUBERNETES', `${dir}/namespace does not hold a namespace name`)
  return {
    baseUrl,
    token,
    ca: { pem, origin: `${dir}/ca.crt` },
    timeoutMs: timing.timeoutMs,
    pollIntervalMs: timing.pollIntervalMs,
    proxied: timing.proxied,
    namespace,
  }
}
