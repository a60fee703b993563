// Every TaskRun says why it ended: the Tekton results `reason` (one word) and `message` (the sentence the log
// ends with, one escaped line of at most 512 bytes) on every exit, 2 and 3 included, and audit mode never
// breaks a chain: a configuration error is written to the results as verdict error and exits 0.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { evaluate } from '../../gate/evaluate.ts'
import { buildJsonReport, cutBytes, tektonResults } from '../../gate/render.ts'
import { EXIT } from '../../gate/vocabulary.ts'
import { SAMPLE_DIGEST, sampleImageBody } from '../support/documents.ts'
import { runGate, writeFiles } from '../support/gate.ts'
import { makeTls, TEST_TOKEN } from '../support/simulator.ts'
import { createServer, type AddressInfo } from 'node:net'
import { once } from 'node:events'

const resultsDir = () => mkdtempSync(join(tmpdir(), 'policy-gate-results-'))
const resultsOf = (dir: string) =>
  Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name), 'utf8')]))

describe('reason and message', () => {
  it("say the verdict in the summary's own words", async () => {
    const dir = resultsDir()
    const files = writeFiles({ 'body.json': JSON.stringify(sampleImageBody()) })
    const run = await runGate(['--gate', 'high', '--input', files['body.json']!, '--results-dir', dir, SAMPLE_DIGEST])
    expect(run.code).toBe(EXIT.VIOLATION)
    const results = resultsOf(dir)
    expect(results.reason).toBe('POLICY_VIOLATION')
    expect(results.message).toBe('FAIL: 4 vulnerabilities (4 findings) block at gate high.')
    expect(run.stdout.trim().split('\n').at(-1)).toContain(results.message)
  })

  it('say what failed on exit 3, in one line', async () => {
    const dir = resultsDir()
    const run = await runGate(['--gate', 'high', '--input', '-', '--results-dir', dir, SAMPLE_DIGEST], {
      stdin: JSON.stringify({ Digest: SAMPLE_DIGEST, Packages: [1] }),
    })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    const results = resultsOf(dir)
    expect(results).toMatchObject({ verdict: 'error', reason: 'MALFORMED_RESPONSE' })
    expect(results.message).toMatch(/^no verdict: /)
    expect(run.stderr).toContain(results.message)
  })

  it('are written on exit 2 too, even when an option itself is wrong', async () => {
    const dir = resultsDir()
    const run = await runGate(['--gate', 'severe', '--results-dir', dir, SAMPLE_DIGEST])
    expect(run.code).toBe(EXIT.USAGE)
    const results = resultsOf(dir)
    expect(results).toMatchObject({ verdict: 'error', reason: 'GATE' })
    expect(results.message).toContain('severe')
  })

  it(
    'audit mode exits 0 on a configuration error, writes verdict error, and says loudly that enforcement would have ' +
      'stopped',
    async () => {
      const dir = resultsDir()
      const run = await runGate(['--gate', 'severe', '--results-dir', dir, SAMPLE_DIGEST], {
        env: { POLICY_MODE: 'audit' },
      })
      expect(run.code).toBe(EXIT.PASS)
      expect(run.stderr).toContain('AUDIT: the gate would have failed here (exit 2, configuration error)')
      expect(resultsOf(dir)).toMatchObject({ verdict: 'error', reason: 'GATE' })
      const late = resultsDir()
      const files = writeFiles({ 'body.json': JSON.stringify(sampleImageBody()), 'exemptions.yaml': 'exemptions: [\n' })
      const lateRun = await runGate(
        [
          '--mode',
          'audit',
          '--input',
          files['body.json']!,
          '--exemptions',
          files['exemptions.yaml']!,
          '--results-dir',
          late,
          '--format',
          'json',
          SAMPLE_DIGEST,
        ],
        { env: { GATE: 'high' } },
      )
      expect(lateRun.code).toBe(EXIT.PASS)
      expect(JSON.parse(lateRun.stdout)).toMatchObject({
        verdict: 'error',
        exitCode: 0,
        enforcedExitCode: 2,
        reason: 'EXEMPTIONS',
      })
      expect(resultsOf(late).message).toMatch(/^AUDIT, not enforced: /)
    },
  )

  it('keep the message to one escaped line of at most 512 bytes', () => {
    const report = buildJsonReport(
      { image: null, gate: 'high' },
      { error: { code: 'STORE_ERROR', message: `the store said \u001b[31m${'é'.repeat(600)}\nand more` } },
    )
    const { message } = tektonResults(report)
    expect(Buffer.byteLength(message!)).toBeLessThanOrEqual(512)
    expect(message).not.toMatch(/[\n\u001b]/)
    expect(message).toMatch(/…$/)
    expect(cutBytes('😀😀', 6)).toBe('…')
    expect(
      tektonResults(
        buildJsonReport({ image: null, gate: 'high' }, { evaluation: evaluate(sampleImageBody(), 'critical') }),
      ).reason,
    ).toBe('POLICY_VIOLATION')
    expect(tektonResults(buildJsonReport({ image: null, gate: 'none' }, { skipped: true }))).toMatchObject({
      reason: 'GATE_NONE',
      verdict: 'skipped',
    })
  })
})

describe('day-2 messages', () => {
  it('says a store that refuses connections refuses them, keeps trying to the deadline, and then names what to check', async () => {
    // A port that was free a moment ago: nothing listens there, so every connection is refused.
    const probe = createServer().listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const { port } = probe.address() as AddressInfo
    probe.close()
    const tls = await makeTls()
    const files = writeFiles({ 'ca.crt': tls.caCert })
    const run = await runGate(['--timeout', '4s', '--format', 'json', SAMPLE_DIGEST], {
      env: {
        GATE: 'high',
        METADATA_STORE_URL: `127.0.0.1:${port}`,
        ACCESS_TOKEN: TEST_TOKEN,
        METADATA_STORE_CA_CERT: files['ca.crt']!,
      },
    })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain(`connection to 127.0.0.1:${port} refused (ECONNREFUSED); attempt 1`)
    const report = JSON.parse(run.stdout)
    expect(report.reason).toBe('TIMEOUT')
    expect(report.error.message).toContain(
      `Nothing answered at 127.0.0.1:${port}: check the store's Service (kubectl get svc -n metadata-store), the ` +
        `Task's metadata-store-url param`,
    )
    expect(report.error.message).not.toContain('AMR observer')
  })
})
