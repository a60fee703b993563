// Black-box tests of the policy options, from flags and from the environment: exemptions, store triage
// (paginated), waiting for a fresh scan report, score and unknown rules, audit mode and report files.
import { readFileSync } from 'node:fs'
import { XMLParser } from 'fast-xml-parser'
import { beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../policy.ts'
import { useStoreFixture } from './support/fixture.ts'
import { writeFiles } from './support/gate.ts'
import { answer, cleanImageBody, SAMPLE_DIGEST, sampleImageBody, scanReport, triageRecord } from './support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture
const today = new Date().toISOString().slice(0, 10)
const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10)

let files: Record<string, string>
beforeAll(() => {
  files = writeFiles({
    'exemptions.yaml': `# kept in git by team-a
exemptions:
  - id: CVE-2021-44228
    package: org.apache.logging.log4j:log4j-core
    reason: JNDI lookups disabled by log4j2.formatMsgNoLookups
    expires: ${inDays(60)}
    owner: team-a
  - id: CVE-2021-45046
    reason: same mitigation as CVE-2021-44228
    expires: ${today}
  - id: CVE-2023-0464
    reason: policy constraints are not used
    expires: ${inDays(-1)}
  - id: CVE-2099-0001
    reason: left over from an old base image
    expires: ${inDays(100)}
`,
    'broken.yaml': `exemptions:\n  - id: CVE-2021-44228\n    reason: r\n    expires: next week\n`,
    'not-yaml.yaml': `exemptions: [\n`,
  })
})

describe('--exemptions', () => {
  it('suppresses matching findings, names expired, expiring and stale entries, and still fails on the rest', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate(['--exemptions', files['exemptions.yaml']!])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).toContain('Policy 4 exemptions')
    expect(run.stdout).toMatch(/Suppressed, would block otherwise:\n.*CVE-2021-44228 +org\.apache\.logging\.log4j:log4j-core@2\.14\.1 +exempt until \S+ \(team-a\): JNDI lookups disabled/)
    expect(run.stdout).toMatch(/CVE-2021-45046 .* exempt until \S+: same mitigation/)
    expect(run.stdout).toContain(`expired ${inDays(-1)}, no longer applies: CVE-2023-0464`)
    expect(run.stdout).toContain(`expires ${today}, within 14 days: CVE-2021-45046`)
    expect(run.stdout).toContain('stale, matches nothing in this image: CVE-2099-0001')
    expect(run.stdout).toMatch(/Blocking findings, worst first:\n +HIGH +7\.5 +CVE-2023-0464 .*\n +HIGH +7\.4 +CVE-2023-0286/)
    expect(run.stdout).toContain('FAIL: 2 vulnerabilities (2 findings) block at gate high.')
  })

  it('passes from POLICY_EXEMPTIONS when every blocking finding is exempt', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate([], { POLICY_EXEMPTIONS: files['exemptions.yaml']!, GATE: 'critical' })
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stdout).toContain('PASS: nothing blocks at gate critical (2 findings suppressed).')
  })

  it.each([
    ['a bad date', 'broken.yaml', /broken\.yaml: entry 1 \(CVE-2021-44228\): "expires" "next week" is not a real date: use YYYY-MM-DD/],
    ['broken YAML', 'not-yaml.yaml', /not-yaml\.yaml: not valid YAML at line \d+/],
    ['a missing file', 'missing.yaml', /cannot read --exemptions .*missing\.yaml \(ENOENT\)/],
  ])('exits 2 on %s before asking the store', async (_name, file, message) => {
    await serve([answer.image(sampleImageBody())])
    const path = files[file] ?? `${files['broken.yaml']}-${file}`
    const run = await gate(['--exemptions', path])
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toMatch(message)
    expect(fixture.store.requests).toHaveLength(0)
  })
})

describe('--triage', () => {
  const openssl = { Name: 'openssl', Version: '3.0.2-0ubuntu1.7' }
  const filler = Array.from({ length: 150 }, (_, i) => triageRecord(`CVE-2020-${1000 + i}`, { Name: 'zlib', Version: '1' }, 'in_triage'))

  it('reads every page of triage and suppresses not_affected findings, showing the justification', async () => {
    await serve([answer.image(sampleImageBody())], {
      triage: { [SAMPLE_DIGEST]: [...filler, triageRecord('CVE-2023-0286', openssl, 'not_affected', 'code_not_reachable'), triageRecord('CVE-2023-0464', openssl, 'exploitable')] },
    })
    const run = await gate(['--triage'], { GATE: 'high' })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(fixture.store.requests.filter((request) => request.path.startsWith('/api/v1/triage')).map((request) => new URL(request.path, 'https://x').searchParams.get('page'))).toEqual(['1', '2'])
    expect(run.stdout).toContain('Policy store triage (152 records)')
    expect(run.stdout).toMatch(/CVE-2023-0286 +openssl@3\.0\.2-0ubuntu1\.7 +triage not_affected: code_not_reachable/)
    expect(run.stdout).toMatch(/Blocking findings[^]*CVE-2023-0464/)
  })

  it('says so, and judges without triage, on a store that has no triage endpoint (POLICY_TRIAGE=true)', async () => {
    await serve([answer.image(cleanImageBody())])
    const run = await gate([], { POLICY_TRIAGE: 'true' })
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toContain('--triage: this store has no triage endpoint (404 on /api/v1/triage')
  })
})

describe('--newer-than', () => {
  it('waits until the store holds a scan report generated at or after the time, then judges', async () => {
    const since = new Date(Date.now() - 60_000).toISOString()
    await serve([answer.image(cleanImageBody())], {
      reports: { [SAMPLE_DIGEST]: [answer.notFound(), answer.image({ Count: 1, CurrentPage: 1, LastPage: 1, PageSize: 20, Results: [scanReport('2020-01-01T00:00:00Z')] }), answer.image({ Count: 2, Results: [scanReport(new Date().toISOString()), scanReport('2020-01-01T00:00:00Z')] })] },
    })
    const run = await gate(['--newer-than', since])
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toMatch(/the newest scan report was generated 2020-01-01T00:00:00\.000Z, before .*; attempt 2/)
    expect(run.stderr).toContain(`found a scan report of ${SAMPLE_DIGEST} generated at or after ${since}`)
    expect(fixture.store.requests.map((request) => request.path.split('?')[0])).toEqual(['/api/v1/reports', '/api/v1/reports', '/api/v1/reports', `/api/v1/images/${SAMPLE_DIGEST}`])
  })

  it('exits 3 at the deadline when only stale reports exist (POLICY_NEWER_THAN as a duration)', async () => {
    await serve([answer.image(cleanImageBody())], { reports: { [SAMPLE_DIGEST]: [answer.image({ Results: [scanReport('2020-01-01T00:00:00Z')] })] } })
    const run = await gate(['--timeout', '1s'], { POLICY_NEWER_THAN: '2h' })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(/no verdict: timed out after 1s waiting for a scan report of sha256:\S+ generated at or after \S+ \(\d+ requests; last: the newest scan report was generated 2020/)
  })
})

describe('--fail-on-score and --unknown-as', () => {
  const body = { Digest: SAMPLE_DIGEST, Packages: [{ Name: 'busybox', Version: '1.36', Vulnerabilities: [{ CVEID: 'CVE-2026-1', Ratings: [{ Severity: 'Low', Score: 9.8 }] }, { CVEID: 'CVE-2026-2', Ratings: [{ Severity: 'Negligible' }] }] }] }

  it('fails on a high score whatever the severity, from the flag and from POLICY_FAIL_ON_SCORE', async () => {
    await serve([answer.image(body)])
    const fromFlag = await gate(['--fail-on-score', '9'], { GATE: 'critical' })
    expect(fromFlag.code).toBe(EXIT.VIOLATION)
    expect(fromFlag.stdout).toMatch(/LOW +9\.8 +CVE-2026-1 +busybox@1\.36 +\(by score\)/)
    expect((await gate([], { GATE: 'critical', POLICY_FAIL_ON_SCORE: '9.9' })).code).toBe(EXIT.PASS)
    expect((await gate(['--fail-on-score', '11'])).code).toBe(EXIT.USAGE)
  })

  it('counts unknown severities as asked, from the flag and from POLICY_UNKNOWN_AS', async () => {
    await serve([answer.image(body)])
    const strict = await gate(['--unknown-as', 'high'], { GATE: 'high' })
    expect(strict.code).toBe(EXIT.VIOLATION)
    expect(strict.stdout).toMatch(/UNKNOWN +- +CVE-2026-2 +busybox@1\.36 +\(unknown counted per --unknown-as\)/)
    expect((await gate([], { GATE: 'high', POLICY_UNKNOWN_AS: 'medium' })).code).toBe(EXIT.PASS)
    expect((await gate([], { POLICY_UNKNOWN_AS: 'severe' })).stderr).toContain('POLICY_UNKNOWN_AS "severe" is not a severity: use low, medium, high, critical or ignore')
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
    expect(audit.stderr).toContain('AUDIT: the gate would have failed here (exit 1, policy violated); --mode audit lets the pipeline go on')
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
    if (format === 'sarif') expect(JSON.parse(written)).toMatchObject({ version: '2.1.0', runs: [{ results: expect.arrayContaining([expect.objectContaining({ ruleId: 'CVE-2021-44228' })]) }] })
    if (format === 'junit') expect(new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(written).testsuites.testsuite).toMatchObject({ tests: '4', failures: '4' })
  })

  it('refuses a report file in a folder that does not exist', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate(['--report-file', '/nonexistent/folder/report.json'])
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toContain('--report-file "/nonexistent/folder/report.json" cannot be written: its folder is missing or not writable')
    expect(fixture.store.requests).toHaveLength(0)
  })
})
