// The deadline is a promise. The polling rules (backoff, Retry-After, DNS, timers) run here on a fake clock,
// in milliseconds and deterministically; then the built gate proves the real clock is wired: a proxy that
// never answers CONNECT, a store that says Retry-After: 0, FIFOs and /dev/zero, and signals mid-parse.
import { execFileSync } from 'node:child_process'
import { createWriteStream, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { EXIT } from '../../gate/vocabulary.ts'
import { useStoreFixture } from '../support/fixture.ts'
import { runGate, writeFiles } from '../support/gate.ts'
import { startSilentProxy } from '../support/proxy.ts'
import { cleanImageBody, SAMPLE_DIGEST, sampleImageBody } from '../support/documents.ts'
import { answer, TEST_TOKEN } from '../support/simulator.ts'

describe('the real clock: the whole run ends by --timeout', () => {
  const fixture = useStoreFixture()
  const within = (ms: number, timeoutMs: number) => expect(ms).toBeLessThan(timeoutMs + 5_000)

  it('exits 3 by the deadline behind a proxy that accepts TCP and never answers CONNECT', async () => {
    await fixture.serve([answer.image(cleanImageBody())])
    const proxy = await startSilentProxy()
    try {
      const run = await fixture.gate(['--timeout', '3s'], { HTTPS_PROXY: proxy.url })
      expect(run.code).toBe(EXIT.NO_VERDICT)
      expect(run.stderr).toMatch(/no verdict: timed out after 3s/)
      expect(proxy.connects.length).toBeGreaterThan(0)
      within(run.ms, 3_000)
    } finally {
      await proxy.close()
    }
  })

  it('sends a handful of requests, not hundreds, to a store that says Retry-After: 0', async () => {
    await fixture.serve([answer.raw(503, 'busy', { 'retry-after': '0' })])
    const run = await fixture.gate(['--timeout', '3s'])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(fixture.store.requests.length).toBeGreaterThanOrEqual(2)
    expect(fixture.store.requests.length).toBeLessThanOrEqual(4)
    within(run.ms, 3_000)
  })

  it.each([
    ['--input', (fifo: string) => ['--input', fifo], /no verdict: timed out after 2s reading --input/],
    [
      'the token file',
      (fifo: string) => ['--token-file', fifo],
      /no verdict: timed out after 2s reading the configuration/,
    ],
    ['--exemptions', (fifo: string) => ['--exemptions', fifo], /no verdict: timed out after 2s reading --exemptions/],
  ])('a FIFO nobody writes to as %s ends at the deadline', async (_name, flags, message) => {
    await fixture.serve([answer.image(cleanImageBody())])
    const fifo = join(mkdtempSync(join(tmpdir(), 'fifo-')), 'pipe')
    execFileSync('mkfifo', [fifo])
    const run = await fixture.gate([...flags(fifo), '--timeout', '2s'])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(message)
    expect(fixture.store.requests).toHaveLength(0)
    within(run.ms, 2_000)
  })

  it('reads /dev/zero as --input only up to --max-body-size, and refuses it as a token file', async () => {
    const input = await runGate(['--gate', 'high', '--input', '/dev/zero', '--max-body-size', '1MiB', SAMPLE_DIGEST])
    expect(input.code).toBe(EXIT.NO_VERDICT)
    expect(input.stderr).toContain('--input /dev/zero is larger than the --max-body-size of 1048576 bytes')
    await fixture.serve([answer.image(cleanImageBody())])
    const token = await fixture.gate(['--token-file', '/dev/zero'])
    expect(token.code).toBe(EXIT.USAGE)
    expect(token.stderr).toContain('the token file is larger than 1024 KiB')
    expect(fixture.store.requests).toHaveLength(0)
  })
})

describe('signals end the run within a second in every phase', () => {
  /** A report large enough that parsing and evaluating it takes seconds. */
  async function writeLargeReport(megabytes: number): Promise<string> {
    const path = join(mkdtempSync(join(tmpdir(), 'large-')), 'report.json')
    const out = createWriteStream(path)
    const pkg = JSON.stringify({
      Name: 'openssl',
      Version: '3.0.2',
      Vulnerabilities: [{ CVEID: 'CVE-2023-0286', Ratings: [{ Severity: 'High', Score: 7.4 }] }],
    })
    const block = `${Array.from({ length: 1_000 }, () => pkg).join(',')},`
    out.write(`{"Digest":"${SAMPLE_DIGEST}","Packages":[`)
    for (let written = 0; written < megabytes * 2 ** 20; written += block.length)
      if (!out.write(block)) await once(out, 'drain')
    out.end(`${pkg}]}`)
    await once(out, 'close')
    return path
  }

  it.each([
    ['SIGTERM', EXIT.SIGTERM],
    ['SIGINT', EXIT.SIGINT],
  ] as const)(
    '%s while a large --input is parsed and evaluated ends the process at once with %i',
    async (signal, code) => {
      const path = await writeLargeReport(160)
      let sentAt = 0
      const run = await runGate(['--gate', 'high', '--max-body-size', '1GiB', '--input', path, SAMPLE_DIGEST], {
        onStderr: (stderr, child) => {
          if (!sentAt && stderr.includes('parsing ')) {
            sentAt = performance.now()
            // A moment into the parse, so that the signal lands inside JSON.parse, not before it.
            setTimeout(() => child.kill(signal), 100)
          }
        },
      })
      expect(sentAt, 'the gate said it was parsing').toBeGreaterThan(0)
      expect(run.code).toBe(code)
      expect(performance.now() - sentAt - 100).toBeLessThan(1_000)
    },
    60_000,
  )

  it('the same report, left alone, takes longer than that: the test above measures the signal, not a fast parse', async () => {
    const path = await writeLargeReport(160)
    let parsingAt = 0
    const run = await runGate(['--gate', 'high', '--max-body-size', '1GiB', '--input', path, SAMPLE_DIGEST], {
      onStderr: (stderr) => void (parsingAt ||= stderr.includes('parsing ') ? performance.now() : 0),
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(performance.now() - parsingAt).toBeGreaterThan(1_100)
  }, 60_000)
})

describe('a store body with the token echoed', () => {
  const fixture = useStoreFixture()

  it('never puts the token in stdout, stderr, the report or the results, even cut short in a long field', async () => {
    const echoed = {
      ...sampleImageBody(),
      Packages: [
        {
          Name: `Bearer ${TEST_TOKEN}`,
          Version: `${'v'.repeat(70)}${TEST_TOKEN}`,
          Vulnerabilities: [{ CVEID: `${TEST_TOKEN}-CVE`, Ratings: [{ Severity: 'Critical' }] }],
        },
      ],
    }
    await fixture.serve([answer.raw(500, `upstream said: Authorization: Bearer ${TEST_TOKEN}`), answer.image(echoed)])
    const out = writeFiles({ keep: '' })
    const dir = join(out.keep!, '..')
    for (const format of ['json', 'sarif', 'junit']) {
      const run = await fixture.gate([
        '--report-file',
        join(dir, `report.${format}`),
        '--report-format',
        format,
        '--results-dir',
        dir,
        '--format',
        format === 'json' ? 'json' : 'text',
      ])
      expect(run.code).toBe(EXIT.VIOLATION)
      const written = ['verdict', 'blocking', `report.${format}`].map((name) =>
        execFileSync('cat', [join(dir, name)], { encoding: 'utf8' }),
      )
      for (const text of [run.stdout, run.stderr, ...written]) {
        expect(text).not.toContain(TEST_TOKEN)
        expect(text).not.toContain(TEST_TOKEN.slice(0, 12))
      }
      expect(run.stdout + written.join('')).toContain('[redacted]')
    }
  })
})
