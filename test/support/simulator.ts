// A Metadata Store simulator: a real HTTPS server on loopback whose answers come from msw handlers, with
// certificates made for each run. msw cannot intercept undici itself (its interceptors patch http and the
// global fetch), so the server hands each request to msw's getResponse. msw earns its place over a plain
// route table: path parameters (/api/v1/images/:digest), HttpResponse.json and .error() (a dropped
// connection), and delay('infinite') (an answer that never comes) are what these tests are made of, and a
// route table would rebuild them by hand.
import { once } from 'node:events'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { delay, getResponse, http, HttpResponse, type JsonBodyType, type RequestHandler } from 'msw'
import { generate } from 'selfsigned'

/** The token the simulated store accepts; the secret check fails any test whose output holds it. */
export const TEST_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.test-token-never-printed.c2VjcmV0'

export interface Tls {
  readonly caCert: string
  /** The CA's private key (PEM): the registry test's token service signs with it. */
  readonly caKey: string
  readonly key: string
  readonly cert: string
}

/** A CA and a leaf for localhost / 127.0.0.1 / ::1 signed by it. */
export async function makeTls(commonName = 'Simulator Test CA'): Promise<Tls> {
  const ca = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  })
  const leaf = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  })
  return { caCert: ca.cert, caKey: ca.private, key: leaf.private, cert: leaf.cert }
}

/** One answer of the store; `images` maps a digest to the answers it gives in turn (the last repeats). */
export type Answer = () => Response | Promise<Response>

export const answer = {
  notFound: (): Answer => () => HttpResponse.json({ message: 'image not found' }, { status: 404 }),
  image:
    (body: JsonBodyType): Answer =>
    () =>
      HttpResponse.json(body),
  raw:
    (status: number, body: string, headers: Record<string, string> = {}): Answer =>
    () =>
      new HttpResponse(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } }),
  /** Never answers: the client's timeout must cut it. */
  hang: (): Answer => async () => {
    await delay('infinite')
    return new HttpResponse(null, { status: 599 })
  },
}

export function repeat(count: number, reply: Answer): Answer[] {
  return Array.from({ length: count }, () => reply)
}

/** `{Count, CurrentPage, LastPage, PageSize, Results}`, the store's pagination wrapper. */
export function paginated(items: unknown[], page: number, pageSize: number): Record<string, unknown> {
  const lastPage = Math.max(1, Math.ceil(items.length / pageSize))
  return {
    Count: items.length,
    CurrentPage: page,
    LastPage: lastPage,
    PageSize: pageSize,
    Results: items.slice((page - 1) * pageSize, page * pageSize),
  }
}

export interface StoreContent {
  readonly token: string
  /** Digest → the image endpoint's answers in turn (the last repeats). */
  readonly images: Record<string, Answer[]>
  /** Digest → triage records, served in pages as asked; absent: the endpoint answers 404 as on a store without it. */
  readonly triage?: Record<string, unknown[]>
  /** Digest → the reports endpoint's answers in turn. */
  readonly reports?: Record<string, Answer[]>
}

/** The store's endpoints as it and its kube-rbac-proxy answer them. */
export function storeHandlers(options: StoreContent): RequestHandler[] {
  const served = new Map<string, number>()
  const inTurn = (key: string, answers: Answer[] | undefined) => {
    if (!answers || answers.length === 0) return answer.notFound()()
    const index = served.get(key) ?? 0
    served.set(key, index + 1)
    return answers[Math.min(index, answers.length - 1)]!()
  }
  const authorised = (request: Request) => request.headers.get('authorization') === `Bearer ${options.token}`
  const unauthorised = () =>
    new HttpResponse('Unauthorized\n', { status: 401, headers: { 'content-type': 'text/plain; charset=utf-8' } })
  return [
    http.get('/api/v1/images/:digest', ({ request, params }) => {
      if (!authorised(request)) return unauthorised()
      return inTurn(`image ${params.digest}`, options.images[String(params.digest)])
    }),
    http.get('/api/v1/reports', ({ request }) => {
      if (!authorised(request)) return unauthorised()
      const digest = new URL(request.url).searchParams.get('digest') ?? ''
      return inTurn(`reports ${digest}`, options.reports?.[digest])
    }),
    http.get('/api/v1/triage', ({ request }) => {
      if (!authorised(request)) return unauthorised()
      if (!options.triage) return HttpResponse.json({ message: 'Not Found' }, { status: 404 })
      const query = new URL(request.url).searchParams
      const records = options.triage[query.get('digest') ?? ''] ?? []
      return HttpResponse.json(
        paginated(records, Number(query.get('page') ?? 1), Number(query.get('page_size') ?? 20)) as JsonBodyType,
      )
    }),
  ]
}

export interface Simulator {
  /** `https://localhost:PORT` */
  readonly url: string
  /** `localhost:PORT`, the seed's METADATA_STORE_URL form. */
  readonly hostPort: string
  readonly requests: Array<{ method: string; path: string }>
  close(): Promise<void>
}

export async function startSimulator(handlers: RequestHandler[], tls: Tls): Promise<Simulator> {
  const requests: Simulator['requests'] = []
  const server = https.createServer({ key: tls.key, cert: tls.cert }, async (req, res) => {
    const origin = `https://${req.headers.host}`
    const method = req.method ?? 'GET'
    requests.push({ method, path: req.url ?? '/' })
    const headers = new Headers()
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
    const hasBody = method !== 'GET' && method !== 'HEAD'
    const request = new Request(new URL(req.url ?? '/', origin), {
      method,
      headers,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
    } as RequestInit)
    const response = await getResponse(handlers, request, { baseUrl: origin })
    if (!response) return void res.writeHead(404).end()
    if (response.type === 'error') return void res.socket?.destroy()
    res.writeHead(response.status, response.statusText, [...response.headers].flat())
    if (!response.body) return void res.end()
    Readable.fromWeb(response.body as import('node:stream/web').ReadableStream)
      .on('error', () => res.destroy())
      .pipe(res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `https://localhost:${port}`,
    hostPort: `localhost:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
