// Unit tests of the policy beyond the gate: exemptions and their expiry, triage, score and unknown rules,
// audit mode, and the SARIF and JUnit reports (validated against the SARIF schema, parsed as XML).
import { XMLParser } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import {
  decideExit,
  exitCodeFor,
  InterruptedError,
  NoVerdictError,
  UsageError,
  basePolicy,
  buildJsonReport,
  evaluate,
  exemptionsFrom,
  newestReportFrom,
  parseExpiry,
  parseNewerThan,
  parseScore,
  renderJunit,
  renderSarif,
  renderText,
  triagePageFrom,
  type Exemption,
  type Policy,
} from '../policy.ts'
import { validateSarif } from './support/sarif.ts'
import { cleanImageBody, SAMPLE_DIGEST, sampleImageBody, triageRecord } from './support/simulator.ts'

const NOW = Date.parse('2026-11-28T12:00:00Z')
const exemption = (fields: Record<string, unknown>): Exemption => exemptionsFrom({ exemptions: [{ reason: 'accepted risk', expires: '2027-01-31', ...fields }] }, 'x.yaml')[0]!
const policy = (fields: Partial<Policy>): Policy => ({ ...basePolicy('high', NOW), ...fields })
const REF = { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }

describe('exemptionsFrom', () => {
  it('reads every field, a package as a name or as name and version', () => {
    const entries = exemptionsFrom(
      {
        exemptions: [
          { id: 'CVE-2023-0286', package: 'openssl', reason: 'not reachable', expires: '2027-01-31', owner: 'team-a' },
          { id: 'GHSA-jfh8-c2jp-5v3q', package: { name: 'org.apache.logging.log4j:log4j-core', version: '2.14.1' }, reason: 'JNDI off', expires: '2026-12-01T00:00:00Z' },
        ],
      },
      'x.yaml',
    )
    expect(entries[0]).toEqual({ id: 'CVE-2023-0286', package: { name: 'openssl' }, reason: 'not reachable', expires: '2027-01-31', expiresAt: Date.parse('2027-01-31T23:59:59.999Z'), owner: 'team-a' })
    expect(entries[1]).toMatchObject({ package: { name: 'org.apache.logging.log4j:log4j-core', version: '2.14.1' }, expiresAt: Date.parse('2026-12-01T00:00:00Z') })
  })

  it.each([
    ['a file without the list', { other: [] }, 'x.yaml: the file: must hold a top-level "exemptions:" list'],
    ['an entry that is text', { exemptions: ['CVE-1'] }, 'x.yaml: entry 1: is not a mapping'],
    ['a missing id', { exemptions: [{ reason: 'r', expires: '2027-01-01' }] }, 'x.yaml: entry 1: "id" is missing'],
    ['a missing reason', { exemptions: [{ id: 'CVE-1', expires: '2027-01-01' }] }, 'x.yaml: entry 1 (CVE-1): "reason" is missing'],
    ['a missing expiry', { exemptions: [{ id: 'CVE-1', reason: 'r' }] }, 'x.yaml: entry 1 (CVE-1): "expires" is missing: the last day it applies'],
    ['an impossible date', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-02-30' }] }, '"expires" "2027-02-30" is not a real date'],
    ['February 30 with a time', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-02-30T10:00:00Z' }] }, 'entry 1 (CVE-1): "expires" "2027-02-30T10:00:00Z" is not a real date'],
    ['hour 25', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01T25:00:00Z' }] }, '"expires" "2027-01-01T25:00:00Z" is not a real date'],
    ['month 13', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-13-01T10:00:00Z' }] }, 'is not a real date'],
    ['second 60', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01T23:59:60Z' }] }, 'is not a real date'],
    ['an offset of 24 hours', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01T10:00:00+24:00' }] }, 'is not a real date'],
    ['a misspelt field inside package', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01', package: { name: 'openssl', versions: '3.0.2' } }] }, '"package.versions" is not a field'],
    ['a package version that is a list', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01', package: { name: 'openssl', version: ['3.0.2'] } }] }, '"package.version" must be text'],
    ['a misspelt field', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01', expiry: 'x' }] }, '"expiry" is not a field'],
    ['a package list', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01', package: ['a'] }] }, '"package" must be a name, or a mapping'],
  ])('refuses %s, naming the entry and field', (_name, document, message) => {
    expect(() => exemptionsFrom(document, 'x.yaml')).toThrow(message)
  })

  it('reads dates as the last instant of that day, in UTC', () => {
    expect(parseExpiry('2026-11-28')).toBe(Date.parse('2026-11-28T23:59:59.999Z'))
    expect(parseExpiry('2026-11-28T10:00:00+02:00')).toBe(Date.parse('2026-11-28T08:00:00Z'))
    expect(parseExpiry('28.11.2026')).toBeUndefined()
    expect(parseExpiry('2028-02-29')).toBe(Date.parse('2028-02-29T23:59:59.999Z'))
    expect(parseExpiry('2027-02-29')).toBeUndefined()
  })
})

describe('exemptions in the verdict', () => {
  const critical = (expires: string) => policy({ gate: 'critical', exemptions: [exemption({ id: 'CVE-2021-44228', expires }), exemption({ id: 'CVE-2021-45046', expires })] })

  it.each([
    ['today', '2026-11-28', true, 'expiring'],
    ['in 14 days', '2026-12-12', true, 'expiring'],
    ['in 15 days', '2026-12-13', true, 'quiet'],
    ['yesterday', '2026-11-27', false, 'expired'],
  ])('an entry that expires %s applies: %s, and is %s', (_when, expires, applies, note) => {
    const result = evaluate(sampleImageBody(), critical(expires))
    expect(result.passed).toBe(applies)
    expect(result.suppressed).toHaveLength(applies ? 2 : 0)
    expect(result.exemptions.expiringSoon).toHaveLength(note === 'expiring' ? 2 : 0)
    expect(result.exemptions.expired).toHaveLength(note === 'expired' ? 2 : 0)
  })

  it('names an expired entry in the summary and blocks on what it covered', () => {
    const result = evaluate(sampleImageBody(), critical('2026-11-27'))
    const text = renderText(result, REF, { color: false, policy: critical('2026-11-27') })
    expect(text).toContain('expired 2026-11-27, no longer applies: CVE-2021-44228')
    expect(text).toContain('FAIL: 2 vulnerabilities (2 findings) block at gate critical.')
  })

  it('scopes an entry to a package and version, and reports entries matching nothing as stale', () => {
    const entries = [
      exemption({ id: 'cve-2023-0286', package: { name: 'openssl', version: '3.0.2-0ubuntu1.7' } }),
      exemption({ id: 'CVE-2023-0464', package: 'libssl' }),
      exemption({ id: 'CVE-2099-0001' }),
    ]
    const result = evaluate(sampleImageBody(), policy({ exemptions: entries }))
    expect(result.suppressed.map((finding) => finding.id)).toEqual(['CVE-2023-0286'])
    expect(result.blocking.map((finding) => finding.id)).toContain('CVE-2023-0464')
    expect(result.exemptions.stale.map((entry) => entry.id)).toEqual(['CVE-2023-0464', 'CVE-2099-0001'])
  })

  it('does not call an entry stale when it matches a finding below the gate', () => {
    const result = evaluate(sampleImageBody(), policy({ gate: 'critical', exemptions: [exemption({ id: 'CVE-2016-2781' })] }))
    expect(result.exemptions.stale).toEqual([])
    expect(result.suppressed).toEqual([])
  })

  it('shows what was suppressed and why', () => {
    const rules = policy({ exemptions: [exemption({ id: 'CVE-2023-0286', owner: 'team-a', reason: 'X.400 never parsed' })] })
    const text = renderText(evaluate(sampleImageBody(), rules), REF, { color: false, policy: rules })
    expect(text).toMatch(/Suppressed, would block otherwise:\n {2}HIGH {7}7\.4 {2}CVE-2023-0286 {2}openssl@3\.0\.2-0ubuntu1\.7 {2}exempt until 2027-01-31 \(team-a\): X\.400 never parsed/)
    expect(text).toContain('Policy 1 exemption')
  })
})

describe('triage', () => {
  const openssl = { Name: 'openssl', Version: '3.0.2-0ubuntu1.7' }

  it.each([
    ['not_affected', true],
    ['false_positive', true],
    ['resolved', true],
    ['resolved_with_pedigree', true],
    ['in_triage', false],
    ['exploitable', false],
  ])('a finding triaged %s is suppressed: %s', (state, suppressed) => {
    const { decisions } = triagePageFrom({ Results: [triageRecord('CVE-2023-0286', openssl, state, 'code_not_reachable')], LastPage: 1 })
    const result = evaluate(sampleImageBody(), policy({ triage: decisions }))
    expect(result.suppressed.some((finding) => finding.id === 'CVE-2023-0286')).toBe(suppressed)
    if (suppressed) expect(result.suppressed[0]?.suppressedBy).toEqual({ kind: 'triage', state, justification: 'code_not_reachable' })
  })

  it('reads the current (last) analysis of a record and only for its package', () => {
    const { decisions } = triagePageFrom({ Results: [triageRecord('CVE-2023-0286', { Name: 'other', Version: '1' }, 'not_affected')], LastPage: 1 })
    expect(decisions).toEqual([{ id: 'CVE-2023-0286', state: 'not_affected', package: { name: 'other', version: '1' } }])
    expect(evaluate(sampleImageBody(), policy({ triage: decisions })).suppressed).toEqual([])
  })

  it('refuses a triage page that is not a page', () => {
    // Named as the triage page, not as the image report: malformed() takes the document's name.
    expect(() => triagePageFrom([])).toThrow('the triage page is malformed: it is a list, expected an object')
    expect(() => triagePageFrom({ Results: [{ Analysis: 'x' }] })).toThrow('the triage page is malformed: Results[0].Analysis is a string, expected a list')
  })
})

describe('score and unknown rules', () => {
  const body = (severity: string, score: number) => ({ Digest: SAMPLE_DIGEST, Packages: [{ Name: 'a', Version: '1', Vulnerabilities: [{ CVEID: 'CVE-1', Ratings: [{ Severity: severity, Score: score }] }] }] })

  it('fails on a score at or above --fail-on-score whatever the severity', () => {
    expect(evaluate(body('Low', 9.1), policy({ gate: 'critical', failOnScore: 9 })).blocking[0]?.rule).toBe('score')
    expect(evaluate(body('Low', 8.9), policy({ gate: 'critical', failOnScore: 9 })).passed).toBe(true)
    expect(evaluate(body('Low', 9), policy({ gate: 'critical', failOnScore: 9 })).passed).toBe(false)
  })

  it.each(['0', '7.5', '10'])('accepts score %s', (text) => expect(parseScore(text)).toBe(Number(text)))
  it.each(['-1', '10.5', 'high', ''])('refuses score %j', (text) => expect(() => parseScore(text)).toThrow(/from 0 to 10/))

  it('counts unknown severities as --unknown-as says, never by default', () => {
    expect(evaluate(body('Negligible', 0), policy({ gate: 'high' })).passed).toBe(true)
    expect(evaluate(body('Negligible', 0), policy({ gate: 'high', unknownAs: 'high' })).blocking[0]?.rule).toBe('unknown-as')
    expect(evaluate(body('Negligible', 0), policy({ gate: 'critical', unknownAs: 'high' })).passed).toBe(true)
  })
})

describe('freshness', () => {
  it('reads RFC 3339 times and durations before now', () => {
    expect(parseNewerThan('2026-11-28T09:00:00Z', NOW)).toBe(Date.parse('2026-11-28T09:00:00Z'))
    expect(parseNewerThan('2h', NOW)).toBe(NOW - 7_200_000)
    expect(() => parseNewerThan('yesterday', NOW)).toThrow(/neither an RFC 3339 time/)
    for (const impossible of ['2026-11-28T25:00:00Z', '2026-13-01T00:00:00Z', '2026-02-30T10:00:00Z', '2026-11-28T10:00:60Z', '2026-11-28T10:60:00Z']) {
      expect(() => parseNewerThan(impossible, NOW), impossible).toThrow(`--newer-than "${impossible}" is not a real time`)
    }
  })

  it('finds the newest report on a page', () => {
    expect(newestReportFrom({ Results: [{ GeneratedAt: '2026-11-28T10:00:00Z' }, { GeneratedAt: '2026-11-28T11:00:00Z' }] })).toBe(Date.parse('2026-11-28T11:00:00Z'))
    expect(newestReportFrom({ Results: [] })).toBeUndefined()
  })
})

describe('audit mode and reports', () => {
  const failing = evaluate(sampleImageBody(), policy({ exemptions: [exemption({ id: 'CVE-2023-0286' })] }))
  const outcomes = {
    fail: buildJsonReport({ image: REF, gate: 'high' }, { evaluation: failing }),
    pass: buildJsonReport({ image: REF, gate: 'high' }, { evaluation: evaluate(cleanImageBody(), 'high') }),
    error: buildJsonReport({ image: REF, gate: 'high' }, { error: { code: 'TIMEOUT', message: 'timed out <after> 1s & more' } }),
  }

  it.each([
    ['a pass', { evaluation: evaluate(cleanImageBody(), 'high') }, 'enforce', 0, 0],
    ['a violation', { evaluation: failing }, 'enforce', 1, 1],
    ['no verdict', { error: { code: 'TIMEOUT', message: 'x' } }, 'enforce', 3, 3],
    ['a verdict the Task could not record', { evaluation: failing, error: { code: 'RESULTS_NOT_WRITTEN', message: 'x' } }, 'enforce', 3, 3],
    ['gate none', { skipped: true as const }, 'enforce', 0, 0],
    ['a violation in audit mode', { evaluation: failing }, 'audit', 0, 1],
    ['no verdict in audit mode', { error: { code: 'TIMEOUT', message: 'x' } }, 'audit', 0, 3],
  ] as const)('decideExit: %s exits %i and enforces %i', (_name, outcome, mode, exitCode, enforcedExitCode) => {
    expect(decideExit(outcome, mode)).toEqual({ exitCode, enforcedExitCode })
  })

  it('exitCodeFor reads the code an error carries, and calls anything else no verdict', () => {
    expect([new UsageError('GATE', 'x'), new NoVerdictError('TLS', 'x'), new InterruptedError('SIGTERM'), new InterruptedError('SIGINT'), new TypeError('bug')].map(exitCodeFor)).toEqual([2, 3, 143, 130, 3])
  })

  it('exits 0 in audit mode but keeps the verdict and the enforced exit code', () => {
    expect(buildJsonReport({ image: REF, gate: 'high', mode: 'audit' }, { evaluation: failing })).toMatchObject({ mode: 'audit', verdict: 'fail', exitCode: 0, enforcedExitCode: 1 })
    expect(buildJsonReport({ image: REF, gate: 'high', mode: 'audit' }, { error: { code: 'X', message: 'y' } })).toMatchObject({ exitCode: 0, enforcedExitCode: 3 })
  })

  const validate = validateSarif

  it.each(Object.entries(outcomes))('writes valid SARIF 2.1.0 for a %s', (_name, outcome) => {
    const sarif = JSON.parse(renderSarif(outcome))
    expect(validate(sarif), JSON.stringify(validate.errors, null, 1)).toBe(true)
    expect(sarif.runs[0].results).toHaveLength(outcome.blocking.length + outcome.suppressed.length)
  })

  it('marks suppressed findings as accepted suppressions in SARIF', () => {
    const results = JSON.parse(renderSarif(outcomes.fail)).runs[0].results
    expect(results.find((result: { ruleId: string }) => result.ruleId === 'CVE-2023-0286').suppressions).toEqual([{ kind: 'external', status: 'accepted', justification: 'exempt until 2027-01-31: accepted risk' }])
    expect(results[0]).toMatchObject({ ruleId: 'CVE-2021-44228', level: 'error' })
  })

  it('writes JUnit XML with one failing test case per blocking finding', () => {
    const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(renderJunit(outcomes.fail))
    const suite = parsed.testsuites.testsuite
    expect(suite).toMatchObject({ tests: '4', failures: '3', errors: '0', skipped: '1' })
    expect(suite.testcase.filter((testCase: Record<string, unknown>) => testCase.failure)).toHaveLength(3)
    expect(suite.testcase[0]).toMatchObject({ name: 'CVE-2021-44228 in org.apache.logging.log4j:log4j-core@2.14.1', failure: { type: 'critical' } })
  })

  it.each([
    ['pass', { tests: '1', failures: '0', errors: '0' }],
    ['error', { tests: '1', failures: '0', errors: '1' }],
  ] as const)('writes well-formed JUnit for a %s', (name, counts) => {
    const parsed = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(renderJunit(outcomes[name]))
    expect(parsed.testsuites.testsuite).toMatchObject(counts)
    if (name === 'error') expect(parsed.testsuites.testsuite.testcase.error.message).toBe('timed out <after> 1s & more')
  })
})
