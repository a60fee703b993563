// --mode audit and --report-file: the exit decision, and the JSON, SARIF and JUnit reports (SARIF validated
// against its schema, JUnit parsed as XML).
import { readFileSync } from 'node:fs'
import { XMLParser } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import { basePolicy, evaluate } from '../gate/evaluate.ts'
import { exemptionsFrom } from '../gate/input.ts'
import { buildJsonReport, decideExit, exitCodeFor, renderJunit, renderSarif } from '../gate/render.ts'
import { type Exemption, EXIT, InterruptedError, NoVerdictError, type Policy, UsageError } from '../gate/vocabulary.ts'
import { cleanImageBody, SAMPLE_DIGEST, sampleImageBody } from './support/documents.ts'
import { useStoreFixture } from './support/fixture.ts'
import { writeFiles } from './support/gate.ts'
import { validateSarif } from './support/sarif.ts'
import { answer } from './support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture

const NOW = Date.parse('2026-11-28T12:00:00Z')

const exemption = (fields: Record<string, unknown>): Exemption =>
  exemptionsFrom({ exemptions: [{ reason: 'accepted risk', expires: '2027-01-31', ...fields }] }, 'x.yaml')[0]!

const policy = (fields: Partial<Policy>): Policy => ({ ...basePolicy('high', NOW), ...fields })

const REF = { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }

describe('audit mode and reports', () => {
  const failing = evaluate(sampleImageBody(), policy({ exemptions: [exemption({ id: 'CVE-2023-0286' })] }))
  const outcomes = {
    fail: buildJsonReport({ image: REF, gate: 'high' }, { evaluation: failing }),
    pass: buildJsonReport({ image: REF, gate: 'high' }, { evaluation: evaluate(cleanImageBody(), 'high') }),
    error: buildJsonReport(
      { image: REF, gate: 'high' },
      { error: { code: 'TIMEOUT', message: 'timed out <after> 1s & more' } },
    ),
  }

  it.each([
    ['a pass', { evaluation: evaluate(cleanImageBody(), 'high') }, 'enforce', 0, 0],
    ['a violation', { evaluation: failing }, 'enforce', 1, 1],
    ['no verdict', { error: { code: 'TIMEOUT', message: 'x' } }, 'enforce', 3, 3],
    [
      'a verdict the Task could not record',
      { evaluation: failing, error: { code: 'RESULTS_NOT_WRITTEN', message: 'x' } },
      'enforce',
      3,
      3,
    ],
    ['gate none', { skipped: true as const }, 'enforce', 0, 0],
    ['a violation in audit mode', { evaluation: failing }, 'audit', 0, 1],
    ['no verdict in audit mode', { error: { code: 'TIMEOUT', message: 'x' } }, 'audit', 0, 3],
  ] as const)('decideExit: %s exits %i and enforces %i', (_name, outcome, mode, exitCode, enforcedExitCode) => {
    expect(decideExit(outcome, mode)).toEqual({ exitCode, enforcedExitCode })
  })

  it('exitCodeFor reads the code an error carries, and calls anything else no verdict', () => {
    expect(
      [
        new UsageError('GATE', 'x'),
        new NoVerdictError('TLS', 'x'),
        new InterruptedError('SIGTERM'),
        new InterruptedError('SIGINT'),
        new TypeError('bug'),
      ].map(exitCodeFor),
    ).toEqual([2, 3, 143, 130, 3])
  })

  it('exits 0 in audit mode but keeps the verdict and the enforced exit code', () => {
    expect(buildJsonReport({ image: REF, gate: 'high', mode: 'audit' }, { evaluation: failing })).toMatchObject({
      mode: 'audit',
      verdict: 'fail',
      exitCode: 0,
      enforcedExitCode: 1,
    })
    expect(
      buildJsonReport({ image: REF, gate: 'high', mode: 'audit' }, { error: { code: 'X', message: 'y' } }),
    ).toMatchObject({ exitCode: 0, enforcedExitCode: 3 })
  })

  const validate = validateSarif

  it.each(Object.entries(outcomes))('writes valid SARIF 2.1.0 for a %s', (_name, outcome) => {
    const sarif = JSON.parse(renderSarif(outcome))
    expect(validate(sarif), JSON.stringify(validate.errors, null, 1)).toBe(true)
    expect(sarif.runs[0].results).toHaveLength(outcome.blocking.length + outcome.suppressed.length)
  })

  it('marks suppressed findings as accepted suppressions in SARIF', () => {
    const results = JSON.parse(renderSarif(outcomes.fail)).runs[0].results
    expect(results.find((result: { ruleId: string }) => result.ruleId === 'CVE-2023-0286').suppressions).toEqual([
      { kind: 'external', status: 'accepted', justification: 'exempt until 2027-01-31: accepted risk' },
    ])
    expect(results[0]).toMatchObject({ ruleId: 'CVE-2021-44228', level: 'error' })
  })

  it('writes JUnit XML with one failing test case per blocking finding', () => {
    const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(renderJunit(outcomes.fail))
    const suite = parsed.testsuites.testsuite
    expect(suite).toMatchObject({ tests: '4', failures: '3', errors: '0', skipped: '1' })
    expect(suite.testcase.filter((testCase: Record<string, unknown>) => testCase.failure)).toHaveLength(3)
    expect(suite.testcase[0]).toMatchObject({
      name: 'CVE-2021-44228 in org.apache.logging.log4j:log4j-core@2.14.1',
      failure: { type: 'critical' },
    })
  })

  it.each([
    ['pass', { tests: '1', failures: '0', errors: '0' }],
    ['error', { tests: '1', failures: '0', errors: '1' }],
  ] as const)('writes well-formed JUnit for a %s', (name, counts) => {
    const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(
      renderJunit(outcomes[name]),
    )
    expect(parsed.testsuites.testsuite).toMatchObject(counts)
    if (name === 'error') expect(parsed.testsuites.testsuite.testcase.error.message).toBe('timed out <after> 1s & more')
  })
})

describe('--mode audit', () => {
  it('prints the same evaluation, says plainly the gate would have failed, and exits 0', async () => {
    await serve([answer.image(sampleImageBody())])
    const enforce = await gate([])
    const audit = await gate(['--mode', 'audit'])
    expect(enforce.code).toBe(EXIT.VIOLATION)
    expect(audit.code).toBe(EXIT.PASS)
    expect(audit.stdout).toBe(enforce.stdout)
    expect(audit.stderr).toContain(
      'AUDIT: the gate would have failed here (exit 1, policy violated); --mode audit lets the pipeline go on',
    )
  })

  it('also lets a run without a verdict go on (POLICY_MODE=audit), saying so', async () => {
    await serve([answer.raw(401, 'Unauthorized\n')])
    const run = await gate(['--format', 'json'], { POLICY_MODE: 'audit' })
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toContain('AUDIT: the gate would have failed here (exit 3, no verdict)')
    expect(JSON.parse(run.stdout)).toMatchObject({ mode: 'audit', verdict: 'error', exitCode: 0, enforcedExitCode: 3 })
  })
})

describe('--report-file', () => {
  it.each([
    ['json', 'report.json', {}],
    ['sarif', 'report.sarif', {}],
    ['junit', 'report.xml', {}],
    ['sarif', 'out.txt', { POLICY_REPORT_FORMAT: 'sarif' }],
  ] as const)('writes a %s report to %s beside the console summary', async (format, name, env) => {
    await serve([answer.image(sampleImageBody())])
    const dir = writeFiles({ keep: '' })
    const path = `${dir.keep}-${name}`
    const run = await gate(['--report-file', path], { ...env })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).toContain('FAIL: 4 vulnerabilities')
    const written = readFileSync(path, 'utf8')
    if (format === 'json') expect(JSON.parse(written)).toMatchObject({ verdict: 'fail', counts: { critical: 2 } })
    if (format === 'sarif')
      expect(JSON.parse(written)).toMatchObject({
        version: '2.1.0',
        runs: [{ results: expect.arrayContaining([expect.objectContaining({ ruleId: 'CVE-2021-44228' })]) }],
      })
    if (format === 'junit')
      expect(
        new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(written).testsuites.testsuite,
      ).toMatchObject({ tests: '4', failures: '4' })
  })

  it('refuses a report file in a folder that does not exist', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate(['--report-file', '/nonexistent/folder/report.json'])
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toContain(
      '--report-file "/nonexistent/folder/report.json" cannot be written: its folder is missing or not writable',
    )
    expect(fixture.store.requests).toHaveLength(0)
  })
})
