// Asking the store: waiting through 404s, backoff, answers that end the run at once (401, 403, TLS, malformed
// bodies), and signals; unit tests of classifyResponse, then the built gate against the HTTPS simulator.
import { beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../gate/vocabulary.ts'
import { classifyError, classifyResponse, parseRetryAfter } from '../../gate/wait.ts'
import { cleanImageBody, SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody } from '../support/documents.ts'
import { useStoreFixture } from '../support/fixture.ts'
import { type GateRun, runGate, writeFiles } from '../support/gate.ts'
import { answer, repeat, TEST_TOKEN } from '../support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture

let files: Record<string, string>

beforeAll(() => {
  files = {
    ...fixture.files,
    'sample.json': writeFiles({ 'sample.json': JSON.stringify(sampleImageBody()) })['sample.json']!,
  }
})

function expectNoToken(run: GateRun): void {
  expect(run.stdout + run.stderr).not.toContain(TEST_TOKEN)
}

describe('classifyResponse', () => {
  const response = (status: number, body = '', headers: Record<string, string> = {}) =>
    classifyResponse({ status, headers, body }, Date.parse('2026-01-01T00:00:00Z'))

  it.each([
    [404, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
    [401, 'fail'],
    [403, 'fail'],
    [400, 'fail'],
    [302, 'fail'],
  ])('%i means %s', (status, kind) => {
    expect(response(status).kind).toBe(kind)
  })

  it('honours Retry-After in seconds and as an HTTP date', () => {
    expect(response(503, '', { 'retry-after': '7' })).toMatchObject({ kind: 'retry', delayMs: 7_000 })
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', Date.parse('2026-01-01T00:00:00Z'))).toBe(30_000)
    expect(parseRetryAfter('soon', 0)).toBeUndefined()
  })

  it('ends at once on a 200 that is not JSON', () => {
    expect(response(200, '<html>')).toMatchObject({ kind: 'fail', error: { code: 'MALFORMED_RESPONSE' } })
  })
})

describe('waiting for the scan and judging it', () => {
  it('exits 1 after three 404s then a report with critical vulnerabilities, naming what to fix', async () => {
    await serve([...repeat(3, answer.notFound()), answer.image(sampleImageBody())])
    const run = await gate([])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(
      run.stderr.match(/not in the store yet \(404\); attempt \d, .* elapsed, .* left; next try in/g),
    ).toHaveLength(3)
    expect(run.stdout).toContain('FAIL: 4 vulnerabilities (4 findings) block at gate high.')
    expect(run.stdout).toMatch(/CRITICAL {2}10\.0 {2}CVE-2021-44228 {2}org\.apache\.logging\.log4j:log4j-core@2\.14\.1/)
    expect(fixture.store.requests).toHaveLength(4)
    expectNoToken(run)
  })

  it('exits 0 after three 404s then a clean report', async () => {
    await serve([...repeat(3, answer.notFound()), answer.image(cleanImageBody())])
    const run = await gate([])
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stdout).toContain('No vulnerabilities reported for this image.')
    expect(run.stdout).toContain('PASS: nothing blocks at gate high.')
    expectNoToken(run)
  })

  it('lets --gate win over GATE and judges by that gate alone', async () => {
    const onlyMedium = {
      Digest: SAMPLE_DIGEST,
      Packages: [
        { Name: 'zlib', Version: '1.2', Vulnerabilities: [{ CVEID: 'CVE-1', Ratings: [{ Severity: 'Medium' }] }] },
      ],
    }
    await serve([answer.image(onlyMedium)])
    const lenient = await gate(['--gate', 'high'], { GATE: 'low' })
    expect(lenient.code).toBe(EXIT.PASS)
    expect(lenient.stdout).toContain('Gate   high (fails on critical or high)')
    const strict = await gate(['--gate', 'medium'], { GATE: 'critical' })
    expect(strict.code).toBe(EXIT.VIOLATION)
    expect(strict.stdout).toMatch(/MEDIUM +- +CVE-1 +zlib@1\.2/)
  })

  it('retries a 500 with backoff and then judges the report', async () => {
    await serve([answer.raw(500, 'internal error'), answer.image(sampleImageBody())])
    const run = await gate([])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stderr).toMatch(/the store answered 500: internal error; attempt 1/)
    expectNoToken(run)
  })

  it('waits as long as a 503 Retry-After asks', async () => {
    await serve([answer.raw(503, '', { 'retry-after': '1' }), answer.image(cleanImageBody())])
    const run = await gate([])
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toMatch(/the store answered 503; attempt 1, .*; next try in 1s/)
    expect(run.ms).toBeGreaterThan(900)
  })

  it('exits 3 when the store answers 404 until the deadline', async () => {
    await serve([answer.notFound()])
    const run = await gate(['--timeout', '1s', '--poll-interval', '200ms'])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(
      /no verdict: timed out after 1s waiting for sha256:a24a\S+ in the store \(\d+ requests; last: not in the store yet \(404\)\)/,
    )
    expect(run.ms).toBeLessThan(15_000)
    expectNoToken(run)
  })

  it('cuts a response that never comes at the deadline and exits 3', async () => {
    await serve([answer.hang()])
    const run = await gate(['--timeout', '2s'])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(/no answer within 2s/)
    expect(run.stderr).toMatch(/no verdict: timed out after 2s/)
    expect(run.ms).toBeLessThan(15_000)
  })
})

describe('ending at once without a verdict', () => {
  it('exits 3 on 401, naming the token secret', async () => {
    await serve([answer.image(sampleImageBody())], { token: 'the-store-expects-another-token' })
    const run = await gate([])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain(
      'the store rejected the token (401 Unauthorized): check that secret metadata-store-access-token',
    )
    expect(fixture.store.requests).toHaveLength(1)
    expectNoToken(run)
  })

  it('exits 3 on 403, naming RBAC and quoting the proxy', async () => {
    await serve([
      answer.raw(403, 'Forbidden (user=system:serviceaccount:dev:default, verb=get, resource=all, subresource=)\n'),
    ])
    const run = await gate([])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain('403 Forbidden: Forbidden (user=system:serviceaccount:dev:default')
    expect(run.stderr).toContain('metadata-store-read-only ClusterRole')
    expectNoToken(run)
  })

  it.each([
    ['invalid JSON', '{"Packages": [', /answered 200 with a body that is not JSON/],
    ['a JSON array', '[]', /the document is a list, expected an object/],
    ['an error object', '{"message":"something went wrong"}', /neither Digest nor Packages/],
  ])('exits 3 on a 200 with %s', async (_name, body, message) => {
    await serve([answer.raw(200, body, { 'content-type': 'application/json' })])
    const run = await gate([])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(message)
    expectNoToken(run)
  })

  it('exits 3 at once when the CA does not sign the store, naming the CA file', async () => {
    await serve([answer.image(cleanImageBody())])
    const run = await gate([], { METADATA_STORE_CA_CERT: files['other-ca.crt']! })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(
      /TLS with the store failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/,
    )
    expect(run.stderr).toContain(files['other-ca.crt'])
    expect(fixture.store.requests).toHaveLength(0)
    expectNoToken(run)
  })

  it('exits 3 when no CA is given for a private store, saying how to give one', async () => {
    await serve([answer.image(cleanImageBody())])
    const run = runGate([SAMPLE_IMAGE], {
      env: { GATE: 'high', METADATA_STORE_URL: fixture.store.url, ACCESS_TOKEN: TEST_TOKEN },
    })
    const result = await run
    expect(result.code).toBe(EXIT.NO_VERDICT)
    expect(result.stderr).toContain("pass the store's CA with --ca-cert or METADATA_STORE_CA_CERT")
    expect(result.stderr).toContain('in the Task, create secret metadata-store-cert (key caCrt)')
    expect(result.stderr).not.toContain('use-system-ca')
    expectNoToken(result)
  })
})

describe('signals', () => {
  it.each([
    ['SIGTERM', EXIT.SIGTERM],
    ['SIGINT', EXIT.SIGINT],
  ] as const)('stops within a second on %s while waiting, says so and exits %i', async (signal, code) => {
    await serve([answer.notFound()])
    let sentAt = 0
    const run = await runGate([SAMPLE_IMAGE], {
      env: {
        GATE: 'high',
        METADATA_STORE_URL: fixture.store.hostPort,
        ACCESS_TOKEN: TEST_TOKEN,
        METADATA_STORE_CA_CERT: files.caCrt!,
        POLICY_POLL_INTERVAL: '30s',
      },
      onStderr: (stderr, child) => {
        if (!sentAt && stderr.includes('not in the store yet')) {
          sentAt = performance.now()
          child.kill(signal)
        }
      },
    })
    expect(run.code).toBe(code)
    expect(run.stderr).toContain(`stopped by ${signal} before a verdict was reached`)
    expect(performance.now() - sentAt).toBeLessThan(5_000)
    expectNoToken(run)
  })
})

describe('classifyError', () => {
  const store = { baseUrl: new URL('https://store.example.com'), proxied: false, ca: { origin: '/var/cert/caCrt' } }
  const failure = (code: string, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(`failed: ${code}`), { code, ...extra })

  it.each([
    ['https://metadata-store-app.metadata-store.svc.cluster.local:8443', 'app-tls-cert'],
    ['https://metadata-store-app.metadata-store.svc:8443', 'app-tls-cert'],
    ['https://metadata-store.tap.example.com', 'ingress-cert'],
  ])(
    'ends at once on a TLS failure with %s, naming the CA given and the secret that matches the URL (%s)',
    (url, secret) => {
      const step = classifyError(failure('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), { ...store, baseUrl: new URL(url) })
      expect(step).toMatchObject({ kind: 'fail', error: { code: 'TLS' } })
      const message = step.kind === 'fail' ? step.error.message : ''
      expect(message).toContain(
        `either /var/cert/caCrt is not the CA for ${new URL(url).hostname} (for this URL it is secret ${secret} in ` +
          `namespace metadata-store, key ca.crt`,
      )
      expect(message).toContain("is not in the store's certificate")
    },
  )

  it('retries a host that does not resolve a few times, naming it, and the proxy when there is one', () => {
    const direct = classifyError(failure('ENOTFOUND', { hostname: 'store.example.com' }), store)
    expect(direct).toMatchObject({
      kind: 'retry',
      reason: 'cannot resolve host store.example.com (ENOTFOUND)',
      giveUp: { after: 3, error: { code: 'DNS' } },
    })
    const proxied = classifyError(
      new Error('wrapped', { cause: failure('ENOTFOUND', { hostname: 'proxy.internal' }) }),
      { ...store, proxied: true },
    )
    expect(proxied).toMatchObject({
      kind: 'retry',
      giveUp: { error: { message: expect.stringContaining('host proxy.internal does not resolve') } },
    })
    expect(proxied.kind === 'retry' && proxied.giveUp?.error.message).toContain('check HTTPS_PROXY')
  })

  it('retries a dropped connection until the deadline, with backoff', () => {
    expect(classifyError(failure('ECONNRESET'), store)).toEqual({
      kind: 'retry',
      reason: `connection to ${store.baseUrl.hostname}:${store.baseUrl.port || '443'} reset (ECONNRESET)`,
      backoff: true,
      hint: expect.stringContaining("check the store's Service"),
    })
    expect(classifyError(failure('EPIPE'), store)).toEqual({
      kind: 'retry',
      reason: 'request failed (EPIPE: failed: EPIPE)',
      backoff: true,
    })
  })
})
