import { getHeapStatistics } from 'node:v8'
import { checkFits } from './body-cost.ts'
import type { BodyLimits, Endpoint, HttpClient, Io, RawResponse, Run } from './io.ts'
import { redact } from './safe-text.ts'
import { CONNECT_TIMEOUT_MS, NoVerdictError, REQUEST_TIMEOUT_MS, importCommonJs } from './vocabulary.ts'
import type { StoreSettings } from './vocabulary.ts'
import type { StoreResponse, WaitDeps } from './wait.ts'

// ---------------------------------------------------------------------------------------------
// I/O at the edges

/**
 * Rejects with the signal's reason as soon as it aborts, whether or not `work` notices (undici does not abort a proxy
 * CONNECT that hangs).
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** What the V8 heap and the container's memory limit still allow, in bytes. */
export function availableMemory(): number {
  const heap = getHeapStatistics()
  const limit = process.constrainedMemory()
  const containerLeft = limit > 0 && limit < 2 ** 50 ? limit - process.memoryUsage.rss() : Number.POSITIVE_INFINITY
  return Math.min(heap.heap_size_limit - heap.used_heap_size, containerLeft)
}

/** Reads a stream to the end, giving up past `maxBytes`. */
export async function readBytes(body: AsyncIterable<Buffer | string>, limits: BodyLimits): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += buffer.length
    if (size > limits.maxBytes) throw limits.tooLarge()
    chunks.push(buffer)
  }
  return Buffer.concat(chunks, size)
}

/** Reads a stream to the end, giving up past `maxBytes` (or what memory allows), and decodes it as UTF-8. */
export async function readCapped(body: AsyncIterable<Buffer | string>, limits: BodyLimits): Promise<string> {
  return decodeBody(await readBytes(body, limits), limits)
}

/** The body as text, once a JSON body is known to fit in memory. */
export function decodeBody(buffer: Buffer, limits: BodyLimits): string {
  if (limits.json) checkFits(buffer, limits.json.available(), limits.json.what)
  return buffer.toString('utf8')
}

export const bodyTooLarge = (what: string, limit: number) => () =>
  new NoVerdictError(
    'BODY_TOO_LARGE',
    `${what} is larger than the --max-body-size of ${limit} bytes, far above a real image report: raise it (and the ` +
      `step's memory) if this image really has that many findings`,
  )

/**
 * An undici client: the endpoint's CA besides the default roots, through a proxy if the env names one, every wait bound
 * by the caller's signal.
 */
export async function createHttpClient(endpoint: Endpoint): Promise<HttpClient> {
  // Loaded here, not at the top: --help, --input and usage errors never pay for TLS or undici.
  const [{ Agent, EnvHttpProxyAgent, request }, { getCACertificates }] = await Promise.all([
    importCommonJs(import('undici')),
    import('node:tls'),
  ])
  const tls = endpoint.ca ? { ca: [...getCACertificates('default'), endpoint.ca.pem] } : {}
  const timeouts = { headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS }
  const connect = { ...tls, timeout: CONNECT_TIMEOUT_MS }
  const dispatcher = endpoint.proxied
    ? new EnvHttpProxyAgent({ ...timeouts, connect, requestTls: tls })
    : new Agent({ ...timeouts, connect })
  return {
    get(url, headers, signal, limits) {
      const exchange = async (): Promise<RawResponse> => {
        const response = await request(url, { dispatcher, method: 'GET', headers, signal })
        return { status: response.statusCode, headers: response.headers, body: await readBytes(response.body, limits) }
      }
      return abortable(exchange(), signal)
    },
    lines(url, headers, signal, limits, onLine) {
      const exchange = async (): Promise<RawResponse> => {
        const response = await request(url, { dispatcher, method: 'GET', headers, signal })
        if (response.statusCode !== 200)
          return {
            status: response.statusCode,
            headers: response.headers,
            body: await readBytes(response.body, limits),
          }
        const decoder = new TextDecoder()
        let pending = ''
        try {
          for await (const chunk of response.body) {
            pending += decoder.decode(chunk as Buffer, { stream: true })
            for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n')) {
              const line = pending.slice(0, end)
              pending = pending.slice(end + 1)
              if (line.trim() && !onLine(line)) return { status: 200, headers: response.headers, body: Buffer.alloc(0) }
            }
            if (pending.length > limits.maxBytes) throw limits.tooLarge()
          }
          pending += decoder.decode()
          if (pending.trim()) onLine(pending)
          return { status: 200, headers: response.headers, body: Buffer.alloc(0) }
        } finally {
          response.body.destroy()
        }
      }
      return abortable(exchange(), signal)
    },
    send(method, url, headers, body, signal, limits) {
      const exchange = async (): Promise<RawResponse> => {
        const response = await request(url, { dispatcher, method, headers, signal, ...(body ? { body } : {}) })
        return { status: response.statusCode, headers: response.headers, body: await readBytes(response.body, limits) }
      }
      return abortable(exchange(), signal)
    },
    /** Destroyed, not closed: a request still hanging (a proxy that never answers) must not hold the process. */
    close: () => dispatcher.destroy(),
  }
}

/**
 * GET for a bearer-token JSON API (the store, the Kubernetes API). The body and headers come back redacted:
 * a server or ingress that echoes the Authorization header cannot put the token in any output.
 */
export function bearerFetch(
  client: HttpClient,
  api: Pick<StoreSettings, 'token'>,
  maxBodyBytes: number,
): WaitDeps['fetch'] {
  const headers = bearerHeaders(api.token)
  const limits: BodyLimits = {
    maxBytes: maxBodyBytes,
    tooLarge: bodyTooLarge('the answer', maxBodyBytes),
    json: { what: 'the answer', available: availableMemory },
  }
  return async (url, signal) => redactedAnswer(await client.get(url, headers, signal, limits), api.token, limits)
}

export const bearerHeaders = (token: string) => ({ authorization: `Bearer ${token}`, accept: 'application/json' })

/** An answer as text, its body and Location redacted of the token. */
export function redactedAnswer(response: RawResponse, token: string, limits: BodyLimits): StoreResponse {
  const location = response.headers.location
  return {
    status: response.status,
    headers: { ...response.headers, ...(location ? { location: redact(String(location), [token]) } : {}) },
    body: redact(decodeBody(response.body, limits), [token]),
  }
}

/** A client for the endpoint, closed when the run ends. */
export async function connect(run: Run, io: Io, endpoint: Endpoint): Promise<HttpClient> {
  const client = await io.connect(endpoint)
  run.clients.push(client)
  return client
}
