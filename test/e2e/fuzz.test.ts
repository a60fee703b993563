// Fault fuzzing. On a fake clock: random answers, Retry-After values and network errors against the polling
// rules. Against the built gate: random status sequences and truncated, mutated, oversized or arbitrary bodies
// from the store, proxies that misbehave, and the same bodies as --input files and FIFOs; arbitrary tar
// layers, manifests, scan lists, Docker configs and ScanPolicies. The gate must end as
// the rules say, never with a stack trace, never past its deadline, never in a hot loop.
// CI runs a fixed seed, so that a red run replays and CI tests the same thing twice; FUZZ_SEED explores.
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import { evaluate } from '../../gate/evaluate.ts'
import { scanStateOf } from '../../gate/kubernetes.ts'
import { credentialsFor, filesOfTar, manifestFrom } from '../../gate/registry.ts'
import { scanPolicyFrom } from '../../gate/scan-policy.ts'
import { EXIT, GATES, NoVerdictError, UsageError, type StoreSettings } from '../../gate/vocabulary.ts'
import { pollStore, type StoreResponse, type WaitDeps } from '../../gate/wait.ts'
import { useStoreFixture } from '../support/fixture.ts'
import { runGate } from '../support/gate.ts'
import { startConnectProxy, type ProxyBehaviour } from '../support/proxy.ts'
import { SAMPLE_DIGEST, sampleImageBody } from '../support/documents.ts'
import { tarOf } from '../support/registry.ts'
import { TEST_TOKEN, type Answer } from '../support/simulator.ts'

const fixture = useStoreFixture()
const seed = Number(process.env.FUZZ_SEED ?? (process.env.CI ? 20_261_128 : Date.now() % 2 ** 31))
console.info(`fault fuzzing with FUZZ_SEED=${seed}`)
const MAX_BODY = 64 * 1024
const SAMPLE = Buffer.from(JSON.stringify(sampleImageBody()))

const bodyFault: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(SAMPLE),
  fc.nat(SAMPLE.length - 1).map((cut) => SAMPLE.subarray(0, cut)),
  fc
    .tuple(fc.nat(SAMPLE.length - 1), fc.integer({ min: 0, max: 255 }))
    .map(([at, byte]) => Buffer.concat([SAMPLE.subarray(0, at), Buffer.from([byte]), SAMPLE.subarray(at + 1)])),
  fc.constant(Buffer.concat([SAMPLE, Buffer.alloc(MAX_BODY, ' ')])),
  fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value) ?? 'null')),
  fc.constant(Buffer.alloc(0)),
)

/** What the rules say a body ends with: a verdict, or no verdict (3). */
function expectedForBody(body: Buffer): number {
  if (body.length > MAX_BODY) return EXIT.NO_VERDICT
  try {
    return evaluate(JSON.parse(body.toString('utf8')), 'high', SAMPLE_DIGEST).passed ? EXIT.PASS : EXIT.VIOLATION
  } catch (error) {
    if (error instanceof SyntaxError || error instanceof NoVerdictError) return EXIT.NO_VERDICT
    throw error
  }
}

const RETRYABLE = [404, 429, 500, 502, 503] as const
const FATAL = [401, 403, 400] as const
const retryAfter = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: -5, max: 200_000 }).map(String),
  fc.double({ min: -10, max: 10, noNaN: true }).map(String),
  fc.constantFrom(
    'Thu, 01 Jan 1970 00:00:00 GMT',
    'Fri, 31 Dec 9999 23:59:59 GMT',
    'soon',
    '',
    '1e3',
    '99999999999999999999',
  ),
)

describe('the polling rules under random answers, on a fake clock', () => {
  type Item =
    | { kind: 'status'; status: number; retryAfter?: string | undefined }
    | { kind: 'network'; code: string }
    | { kind: 'body'; body: Buffer }
  const item: fc.Arbitrary<Item> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('status' as const),
        status: fc.constantFrom(...RETRYABLE, ...FATAL),
        retryAfter,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('network' as const),
        code: fc.constantFrom('ECONNRESET', 'ECONNREFUSED', 'ENOTFOUND', 'UND_ERR_SOCKET', 'EAI_AGAIN'),
      }),
    },
    { weight: 1, arbitrary: bodyFault.map((body) => ({ kind: 'body' as const, body })) },
  )

  it('ends as the rules say, with at least 1 s between retries after a failure and never past the deadline', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(item, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1_000, max: 120_000 }),
        async (sequence, timeoutMs) => {
          let now = 0
          let served = 0
          const requests: Array<{ at: number; item: Item }> = []
          const deps: WaitDeps = {
            fetch: async () => {
              const next = sequence[Math.min(served++, sequence.length - 1)]!
              requests.push({ at: now, item: next })
              if (next.kind === 'network')
                throw Object.assign(new Error(next.code), { code: next.code, hostname: 'store.example.com' })
              if (next.kind === 'body') {
                if (next.body.length > MAX_BODY) throw new NoVerdictError('BODY_TOO_LARGE', 'too large')
                return { status: 200, headers: {}, body: next.body.toString('utf8') } satisfies StoreResponse
              }
              return {
                status: next.status,
                headers: next.retryAfter === undefined ? {} : { 'retry-after': next.retryAfter },
                body: '',
              }
            },
            now: () => now,
            sleep: async (ms) => void (now += ms),
            random: () => 0.5,
            progress: () => undefined,
            signal: new AbortController().signal,
            started: 0,
            blocking: (work) => work(),
          }
          const store: StoreSettings = {
            baseUrl: new URL('https://store.example.com'),
            token: TEST_TOKEN,
            timeoutMs,
            pollIntervalMs: 50,
            proxied: false,
          }
          const poll = {
            url: new URL('https://store.example.com/api/v1/images/x'),
            what: 'x',
            onNotFound: 'wait' as const,
            accept: (document: unknown) => ({ ready: true as const, value: evaluate(document, 'high') }),
          }
          const outcome = await pollStore(poll, store, deps).then(
            () => 'verdict',
            (error: unknown) => (error instanceof NoVerdictError ? error.code : `unexpected ${String(error)}`),
          )
          expect(outcome).not.toMatch(/^unexpected/)
          expect(now).toBeLessThanOrEqual(timeoutMs)
          for (let i = 1; i < requests.length; i++) {
            const previous = requests[i - 1]!.item
            const failed = previous.kind === 'network' || (previous.kind === 'status' && previous.status !== 404)
            const deadlineCut = requests[i]!.at === timeoutMs
            if (failed && !deadlineCut) expect(requests[i]!.at - requests[i - 1]!.at).toBeGreaterThanOrEqual(1_000)
          }
          const last = requests.at(-1)!.item
          if (outcome === 'verdict') expect(last.kind).toBe('body')
          if (outcome === 'TOKEN_REJECTED' || outcome === 'STORE_ERROR') expect(last).toMatchObject({ kind: 'status' })
        },
      ),
      { numRuns: 500, seed },
    )
  })
})

describe('fault fuzzing the built gate', () => {
  type Fault =
    { kind: 'status'; status: (typeof RETRYABLE)[number] | (typeof FATAL)[number] } | { kind: 'body'; body: Buffer }
  const fault: fc.Arbitrary<Fault> = fc.oneof(
    {
      weight: 2,
      arbitrary: fc.constantFrom(...RETRYABLE, ...FATAL).map((status) => ({ kind: 'status' as const, status })),
    },
    { weight: 3, arbitrary: bodyFault.map((body) => ({ kind: 'body' as const, body })) },
  )
  const toAnswer = (item: Fault): Answer =>
    item.kind === 'status'
      ? () =>
          new HttpResponse(item.status === 404 ? '{"message":"image not found"}' : 'failure', {
            status: item.status,
            headers: { 'retry-after': '0' },
          })
      : () =>
          new HttpResponse(new Uint8Array(item.body), { status: 200, headers: { 'content-type': 'application/json' } })
  const expectedExit = (sequence: Fault[]): number => {
    for (const item of sequence) {
      if (item.kind === 'body') return expectedForBody(item.body)
      if (!(RETRYABLE as readonly number[]).includes(item.status)) return EXIT.NO_VERDICT
    }
    return EXIT.NO_VERDICT // only "not yet" and "try again": the deadline ends it
  }

  it('ends with the exit code the rules give, no stack trace, within its deadline', async () => {
    await fc.assert(
      // At most two failures before an answer: with the 1 s retry floor they play out well within 6 s.
      fc.asyncProperty(fc.array(fault, { minLength: 1, maxLength: 3 }), async (sequence) => {
        await fixture.serve(sequence.map(toAnswer))
        try {
          const run = await fixture.gate(['--timeout', '6s', '--max-body-size', String(MAX_BODY)], {
            POLICY_POLL_INTERVAL: '50ms',
          })
          expect(run.code).toBe(expectedExit(sequence))
          expect(run.stderr).not.toMatch(/\n\s+at |this is a bug/)
          expect(run.ms).toBeLessThan(6_000 + 5_000)
          if (run.code === EXIT.NO_VERDICT) expect(run.stderr).toMatch(/no verdict: /)
          else expect(run.stdout).toMatch(/^(PASS|FAIL): /m)
        } finally {
          await fixture.store.close()
        }
      }),
      { numRuns: 20, seed, endOnFailure: true },
    )
  }, 300_000)

  it('stops reading at --max-body-size and exits 3 with BODY_TOO_LARGE', async () => {
    await fixture.serve([
      () => new HttpResponse(new Uint8Array(Buffer.concat([SAMPLE, Buffer.alloc(2 * MAX_BODY, ' ')])), { status: 200 }),
    ])
    const run = await fixture.gate(['--max-body-size', '64KiB', '--format', 'json'])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout).error).toMatchObject({ code: 'BODY_TOO_LARGE' })
    expect(run.stderr).toContain('the answer is larger than the --max-body-size of 65536 bytes')
  })
})

describe('fuzzing proxies', () => {
  it('ends by the deadline with a verdict or no verdict, whatever the proxy does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<ProxyBehaviour>('tunnel', 'silent', 'refuse', 'hang-up', 'garbage', 'slow-accept'),
        async (behaviour) => {
          await fixture.serve([() => new HttpResponse(new Uint8Array(SAMPLE), { status: 200 })])
          const proxy = await startConnectProxy(behaviour)
          try {
            const run = await fixture.gate(['--timeout', '3s'], { HTTPS_PROXY: proxy.url })
            expect(run.code).toBe(
              behaviour === 'tunnel' || behaviour === 'slow-accept' ? EXIT.VIOLATION : EXIT.NO_VERDICT,
            )
            expect(run.stderr).not.toMatch(/\n\s+at |this is a bug/)
            expect(run.ms).toBeLessThan(3_000 + 5_000)
          } finally {
            await proxy.close()
            await fixture.store.close()
          }
        },
      ),
      { numRuns: 8, seed },
    )
  }, 120_000)
})

describe('fuzzing --input files and FIFOs', () => {
  it('ends with the exit code the rules give for the same bodies read from a file or a FIFO', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fuzz-input-'))
    let count = 0
    await fc.assert(
      fc.asyncProperty(bodyFault, fc.boolean(), async (body, viaFifo) => {
        const path = join(dir, `input-${count++}`)
        if (viaFifo) execFileSync('mkfifo', [path])
        else writeFileSync(path, body)
        const running = runGate([
          '--gate',
          'high',
          '--timeout',
          '5s',
          '--max-body-size',
          String(MAX_BODY),
          '--input',
          path,
          SAMPLE_DIGEST,
        ])
        if (viaFifo) {
          // Another process writes, as with --input <(...): it blocks until the gate reads, and dies of SIGPIPE if the
          // gate stops.
          const writer = spawn('sh', ['-c', 'cat > "$1"', 'sh', path], { stdio: ['pipe', 'ignore', 'ignore'] })
          writer.stdin.on('error', () => undefined).end(body)
        }
        const run = await running
        expect(run.code).toBe(expectedForBody(body))
        expect(run.stderr).not.toMatch(/\n\s+at |this is a bug/)
      }),
      { numRuns: 30, seed },
    )
  }, 180_000)
})

describe('registry and Kubernetes data, fuzzed', () => {
  const knownErrors = (error: unknown) => error instanceof NoVerdictError || error instanceof UsageError
  const TAR = tarOf({ 'scan.cdx.json': '{"bomFormat":"CycloneDX"}', 'notes.txt': 'x'.repeat(700) })

  it('reads any bytes as a tar archive or says it is not one, never crashing', () => {
    const mutated = fc.oneof(
      fc.uint8Array({ maxLength: 4096 }).map((bytes) => Buffer.from(bytes)),
      fc
        .tuple(fc.nat(TAR.length - 1), fc.integer({ min: 0, max: 255 }))
        .map(([at, byte]) => Buffer.concat([TAR.subarray(0, at), Buffer.from([byte]), TAR.subarray(at + 1)])),
      fc.nat(TAR.length).map((cut) => TAR.subarray(0, cut)),
    )
    fc.assert(
      fc.property(mutated, (bytes) => {
        try {
          for (const file of filesOfTar(bytes, 'layer')) expect(file.content.length).toBeLessThanOrEqual(bytes.length)
        } catch (error) {
          expect(knownErrors(error), String(error)).toBe(true)
        }
      }),
      { seed, numRuns: 500 },
    )
  })

  it('judges any JSON as a manifest, a scan list or a Docker config with a known error or a result', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        for (const read of [
          () => manifestFrom(value, '', 'the manifest'),
          () => scanStateOf(value, SAMPLE_DIGEST),
          () => credentialsFor(value, 'registry.example.com', 'config'),
          () => manifestFrom({ layers: value }, '', 'm'),
          () => scanStateOf({ items: [value] }, SAMPLE_DIGEST),
        ]) {
          try {
            read()
          } catch (error) {
            expect(knownErrors(error), String(error)).toBe(true)
          }
        }
      }),
      { seed, numRuns: 500 },
    )
  })
})

describe('ScanPolicies, fuzzed', () => {
  const GRYPE = readFileSync(new URL('../fixtures/scan-policy/grype-scan-policy.yaml', import.meta.url), 'utf8')
  const regoOf = (yaml: string) => /regoFile: \|\n([\s\S]*)$/.exec(yaml)![1]!.replace(/^ {4}/gm, '')
  const REGO = regoOf(GRYPE)
  const hash = (text: string) => createHash('sha256').update(text).digest('hex')

  it('reads any document, and any mutation of the template, as the template, or refuses it with exit 2 reasons', () => {
    const rego = fc.oneof(
      fc.string({ maxLength: 400 }),
      fc
        .tuple(fc.nat(REGO.length - 1), fc.string({ maxLength: 8 }))
        .map(([at, text]) => REGO.slice(0, at) + text + REGO.slice(at + 1)),
      fc.nat(REGO.length).map((cut) => REGO.slice(0, cut)),
    )
    fc.assert(
      fc.property(rego, fc.jsonValue(), (regoFile, other) => {
        for (const documents of [
          [{ kind: 'ScanPolicy', metadata: { name: 'p' }, spec: { regoFile } }],
          [other],
          [{ kind: 'ScanPolicy', spec: other }],
        ]) {
          try {
            const policy = scanPolicyFrom(documents, 'p.yaml', hash)
            expect(GATES).toContain(policy.gate)
          } catch (error) {
            expect(error, String(error)).toBeInstanceOf(UsageError)
          }
        }
      }),
      { seed, numRuns: 300 },
    )
  })
})
