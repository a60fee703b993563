// Fault fuzzing: the simulator answers with random status sequences and truncated, mutated, oversized or
// arbitrary bodies; the built gate must end as the rules say (0, 1 or 3), never with a stack trace, and
// never past its deadline. The seed is printed so that a failure can be replayed (FUZZ_SEED=...).
import fc from 'fast-check'
import { HttpResponse } from 'msw'
import { describe, expect, it } from 'vitest'
import { evaluate, EXIT, NoVerdictError } from '../policy.ts'
import { useStoreFixture } from './support/fixture.ts'
import { SAMPLE_DIGEST, sampleImageBody, type Answer } from './support/simulator.ts'

const fixture = useStoreFixture()
const MAX_BODY = 64 * 1024
const SAMPLE = Buffer.from(JSON.stringify(sampleImageBody()))

type Fault =
  | { kind: 'status'; status: 404 | 429 | 500 | 502 | 503 | 401 | 403 | 400 }
  | { kind: 'body'; body: Buffer }

const bodyFault: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(SAMPLE),
  fc.nat(SAMPLE.length - 1).map((cut) => SAMPLE.subarray(0, cut)),
  fc.tuple(fc.nat(SAMPLE.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => Buffer.concat([SAMPLE.subarray(0, at), Buffer.from([byte]), SAMPLE.subarray(at + 1)])),
  fc.constant(Buffer.concat([SAMPLE, Buffer.alloc(MAX_BODY, ' ')])),
  fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value) ?? 'null')),
  fc.constant(Buffer.alloc(0)),
)
const fault: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(404, 429, 500, 502, 503, 401, 403, 400).map((status) => ({ kind: 'status' as const, status })) },
  { weight: 2, arbitrary: bodyFault.map((body) => ({ kind: 'body' as const, body })) },
)

function toAnswer(item: Fault): Answer {
  // Retry-After: 0 keeps retries immediate, so a sequence plays out well within the deadline.
  if (item.kind === 'status') return () => new HttpResponse(item.status === 404 ? '{"message":"image not found"}' : 'failure', { status: item.status, headers: { 'retry-after': '0' } })
  return () => new HttpResponse(new Uint8Array(item.body), { status: 200, headers: { 'content-type': 'application/json' } })
}

/** What the rules say the gate must end with for this sequence (the last answer repeats). */
function expectedExit(sequence: Fault[]): number {
  for (const item of sequence) {
    if (item.kind === 'status') {
      if ([404, 429, 500, 502, 503].includes(item.status)) continue
      return EXIT.NO_VERDICT
    }
    if (item.body.length > MAX_BODY) return EXIT.NO_VERDICT
    try {
      return evaluate(JSON.parse(item.body.toString('utf8')), 'high', SAMPLE_DIGEST).passed ? EXIT.PASS : EXIT.VIOLATION
    } catch (error) {
      if (error instanceof SyntaxError || error instanceof NoVerdictError) return EXIT.NO_VERDICT
      throw error
    }
  }
  return EXIT.NO_VERDICT // only "not yet" and "try again" answers: the deadline ends it
}

describe('fault fuzzing the built gate', () => {
  it('ends with the exit code the rules give, no stack trace, within its deadline', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
    console.info(`fault fuzzing with FUZZ_SEED=${seed}`)
    await fc.assert(
      fc.asyncProperty(fc.array(fault, { minLength: 1, maxLength: 5 }), async (sequence) => {
        await fixture.serve(sequence.map(toAnswer))
        try {
          const run = await fixture.gate(['--timeout', '2s', '--max-body-size', String(MAX_BODY)], { POLICY_POLL_INTERVAL: '50ms' })
          expect(run.code).toBe(expectedExit(sequence))
          expect(run.stderr).not.toMatch(/\n\s+at |this is a bug/)
          expect(run.ms).toBeLessThan(15_000)
          if (run.code === EXIT.NO_VERDICT) expect(run.stderr).toMatch(/no verdict: /)
          else expect(run.stdout).toMatch(/^(PASS|FAIL): /m)
        } finally {
          await fixture.store.close()
        }
      }),
      { numRuns: 40, seed, endOnFailure: true },
    )
  }, 240_000)

  it('stops reading at --max-body-size and exits 3 with BODY_TOO_LARGE', async () => {
    await fixture.serve([() => new HttpResponse(new Uint8Array(Buffer.concat([SAMPLE, Buffer.alloc(2 * MAX_BODY, ' ')])), { status: 200 })])
    const run = await fixture.gate(['--max-body-size', '64KiB', '--format', 'json'])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout).error).toMatchObject({ code: 'BODY_TOO_LARGE' })
    expect(run.stderr).toContain('the answer is larger than the --max-body-size of 65536 bytes')
  })
})
