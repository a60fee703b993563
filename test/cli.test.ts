// Black-box tests: the built dist/policy.mjs as a child process against the HTTPS store simulator.
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { EXIT, EXIT_CODES, OPTIONS } from '../policy.ts'
import { useStoreFixture } from './support/fixture.ts'
import { startConnectProxy } from './support/proxy.ts'
import { runGate, writeFiles, type GateRun } from './support/gate.ts'
import { answer, cleanImageBody, repeat, SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody, TEST_TOKEN, type Tls } from './support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture
let files: Record<string, string>
let tls: Tls

beforeAll(() => {
  files = { ...fixture.files, 'sample.json': writeFiles({ 'sample.json': JSON.stringify(sampleImageBody()) })['sample.json']! }
  tls = fixture.tls
})

function expectNoToken(run: GateRun): void {
  expect(run.stdout + run.stderr).not.toContain(TEST_TOKEN)
}

describe('waiting for the scan and judging it', () => {
  it('exits 1 after three 404s then a report with critical vulnerabilities, naming what to fix', async () => {
    await serve([...repeat(3, answer.notFound()), answer.image(sampleImageBody())])
    const run = await gate([])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stderr.match(/not in the store yet \(404\); attempt \d, .* elapsed, .* left; next try in/g)).toHaveLength(3)
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
    const onlyMedium = { Digest: SAMPLE_DIGEST, Packages: [{ Name: 'zlib', Version: '1.2', Vulnerabilities: [{ CVEID: 'CVE-1', Ratings: [{ Severity: 'Medium' }] }] }] }
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
    expect(run.stderr).toMatch(/no verdict: timed out after 1s waiting for sha256:a24a\S+ in the store \(\d+ requests; last: not in the store yet \(404\)\)/)
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
    expect(run.stderr).toContain('the store rejected the token (401 Unauthorized): check that secret metadata-store-access-token')
    expect(fixture.store.requests).toHaveLength(1)
    expectNoToken(run)
  })

  it('exits 3 on 403, naming RBAC and quoting the proxy', async () => {
    await serve([answer.raw(403, 'Forbidden (user=system:serviceaccount:dev:default, verb=get, resource=all, subresource=)\n')])
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
    expect(run.stderr).toMatch(/TLS with the store failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/)
    expect(run.stderr).toContain(files['other-ca.crt'])
    expect(fixture.store.requests).toHaveLength(0)
    expectNoToken(run)
  })

  it('exits 3 when no CA is given for a private store, saying how to give one', async () => {
    await serve([answer.image(cleanImageBody())])
    const run = runGate([SAMPLE_IMAGE], { env: { GATE: 'high', METADATA_STORE_URL: fixture.store.url, ACCESS_TOKEN: TEST_TOKEN } })
    const result = await run
    expect(result.code).toBe(EXIT.NO_VERDICT)
    expect(result.stderr).toContain('pass the store\'s CA with --ca-cert or METADATA_STORE_CA_CERT')
    expectNoToken(result)
  })
})

describe('input and configuration', () => {
  it('exits 0 for gate none without asking the store', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate([], { GATE: 'NONE' })
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toContain('gate none: no policy enforced')
    expect(fixture.store.requests).toHaveLength(0)
  })

  it.each([
    ['an unknown gate', ['--gate', 'severe', SAMPLE_IMAGE], {}, '--gate "severe" is not a gate: use none, low, medium, high or critical'],
    ['an image without a digest', ['--gate', 'high', 'registry.example.com/app:latest'], {}, 'has no sha256 digest'],
    ['a missing token', ['--gate', 'high', '--url', 'localhost:1', SAMPLE_IMAGE], {}, 'no token given'],
    ['an http:// store', ['--gate', 'high', '--url', 'http://localhost:1', SAMPLE_IMAGE], { ACCESS_TOKEN: TEST_TOKEN }, 'the token would travel in clear'],
    ['TLS checks switched off', ['--gate', 'high', SAMPLE_IMAGE], { NODE_TLS_REJECT_UNAUTHORIZED: '0' }, 'NODE_TLS_REJECT_UNAUTHORIZED=0 would send the token'],
    ['a token passed as a flag', ['--token', TEST_TOKEN, SAMPLE_IMAGE], {}, 'never from a flag'],
  ])('exits 2 on %s with a one-line fix and no stack', async (_name, args, env, message) => {
    const run = await runGate(args, { env })
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toContain(message)
    expect(run.stderr).toContain('run with --help for usage')
    expect(run.stderr).not.toMatch(/\n\s+at /)
    expect(run.stdout).toBe('')
  })

  it('evaluates a saved report from a file or stdin without a store', async () => {
    const fromFile = await runGate(['--gate', 'critical', '--input', files['sample.json']!, SAMPLE_DIGEST])
    expect(fromFile.code).toBe(EXIT.VIOLATION)
    expect(fromFile.stdout).toContain('FAIL: 2 vulnerabilities (2 findings) block at gate critical.')
    const fromStdin = await runGate(['--gate', 'low', '--input', '-', SAMPLE_DIGEST], { stdin: JSON.stringify(cleanImageBody()) })
    expect(fromStdin.code).toBe(EXIT.PASS)
    const broken = await runGate(['--gate', 'low', '--input', '-', SAMPLE_DIGEST], { stdin: 'not json' })
    expect(broken.code).toBe(EXIT.NO_VERDICT)
  })

  it('writes one JSON document with the verdict, counts and blocking findings', async () => {
    await serve([answer.notFound(), answer.image(sampleImageBody())])
    const run = await gate(['--format', 'json'])
    expect(run.code).toBe(EXIT.VIOLATION)
    const report = JSON.parse(run.stdout)
    expect(report).toMatchObject({
      schemaVersion: 1,
      tool: { name: 'amr-policy-gate' },
      image: { reference: SAMPLE_IMAGE, digest: SAMPLE_DIGEST },
      gate: 'high',
      verdict: 'fail',
      exitCode: 1,
      counts: { critical: 2, high: 2, medium: 1, low: 0, unknown: 0 },
      uniqueVulnerabilities: 5,
      findings: 5,
      error: null,
    })
    expect(report.blocking[0]).toEqual({ id: 'CVE-2021-44228', severity: 'critical', score: 10, package: 'org.apache.logging.log4j:log4j-core', version: '2.14.1', rule: 'severity' })
  })

  it('writes a JSON document with the reason when there is no verdict', async () => {
    await serve([answer.raw(401, 'Unauthorized\n')])
    const run = await gate([], { POLICY_FORMAT: 'json' })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout)).toMatchObject({ verdict: 'error', exitCode: 3, counts: null, error: { code: 'TOKEN_REJECTED' } })
  })

  it('writes Tekton results to --results-dir, and refuses a folder it cannot write', async () => {
    await serve([answer.image(sampleImageBody())])
    const dir = mkdtempSync(join(tmpdir(), 'results-'))
    const run = await gate([], { POLICY_RESULTS_DIR: dir })
    expect(run.code).toBe(EXIT.VIOLATION)
    const read = (name: string) => readFileSync(`${dir}/${name}`, 'utf8')
    expect([read('verdict'), read('critical'), read('high'), read('unknown'), read('blocking')]).toEqual(['fail', '2', '2', '0', 'CVE-2021-44228,CVE-2021-45046,CVE-2023-0464,CVE-2023-0286'])
    const refused = await gate(['--results-dir', `${dir}/missing`])
    expect(refused.code).toBe(EXIT.USAGE)
    expect(refused.stderr).toContain(`--results-dir ${dir}/missing is not a writable directory: in a Task use /tekton/results`)
  })

  it('accepts a full https:// URL with a path prefix, the token in ACCESS_TOKEN and the CA as PEM', async () => {
    await serve([answer.image(cleanImageBody())])
    const run = await runGate(['--gate', 'high', '--url', `${fixture.store.url}/`, SAMPLE_DIGEST], { env: { ACCESS_TOKEN: TEST_TOKEN, METADATA_STORE_CA_CERT: tls.caCert } })
    expect(run.code).toBe(EXIT.PASS)
    expect(fixture.store.requests[0]?.path).toBe(`/api/v1/images/${SAMPLE_DIGEST}`)
  })

  it('goes through HTTPS_PROXY with the store CA, and straight to hosts in NO_PROXY', async () => {
    await serve([answer.image(cleanImageBody())])
    const proxy = await startConnectProxy()
    try {
      const proxied = await gate([], { HTTPS_PROXY: proxy.url })
      expect(proxied.code).toBe(EXIT.PASS)
      expect(proxy.connects).toEqual([fixture.store.hostPort])
      const direct = await gate([], { HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost' })
      expect(direct.code).toBe(EXIT.PASS)
      expect(proxy.connects).toHaveLength(1)
    } finally {
      await proxy.close()
    }
  })

  it('--help lists every option, its environment variable and every exit code', async () => {
    const run = await runGate(['--help'])
    expect(run.code).toBe(EXIT.PASS)
    for (const option of OPTIONS) {
      expect(run.stdout).toContain(option.flag)
      if (option.env) expect(run.stdout).toContain(`[env ${option.env}]`)
      if (option.choices) expect(run.stdout).toContain(option.choices.join(' | '))
    }
    for (const [code, meaning] of EXIT_CODES) expect(run.stdout).toContain(`${String(code).padEnd(4)}${meaning}`)
  })

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    const run = await runGate(['--version'])
    expect(run.stdout).toBe(`amr-policy-gate ${version}\n`)
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
      env: { GATE: 'high', METADATA_STORE_URL: fixture.store.hostPort, ACCESS_TOKEN: TEST_TOKEN, METADATA_STORE_CA_CERT: files.caCrt!, POLICY_POLL_INTERVAL: '30s' },
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
