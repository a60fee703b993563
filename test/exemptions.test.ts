// --exemptions: the file's format, expiry and its warnings, stale entries, and the verdict they give.
import { beforeAll, describe, expect, it } from 'vitest'
import { basePolicy, evaluate } from '../gate/evaluate.ts'
import { exemptionsFrom, parseExpiry } from '../gate/input.ts'
import { renderText } from '../gate/render.ts'
import { type Exemption, EXIT, type Policy } from '../gate/vocabulary.ts'
import { exemptionFiles, inDays, SAMPLE_DIGEST, sampleImageBody } from './support/documents.ts'
import { useStoreFixture } from './support/fixture.ts'
import { writeFiles } from './support/gate.ts'
import { answer } from './support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture

const today = inDays(0)
let files: Record<string, string>
beforeAll(() => {
  files = writeFiles(exemptionFiles())
})

const NOW = Date.parse('2026-11-28T12:00:00Z')

const exemption = (fields: Record<string, unknown>): Exemption =>
  exemptionsFrom({ exemptions: [{ reason: 'accepted risk', expires: '2027-01-31', ...fields }] }, 'x.yaml')[0]!

const policy = (fields: Partial<Policy>): Policy => ({ ...basePolicy('high', NOW), ...fields })

const REF = { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }

describe('exemptionsFrom', () => {
  it('reads every field, a package as a name or as name and version', () => {
    const entries = exemptionsFrom(
      {
        exemptions: [
          { id: 'CVE-2023-0286', package: 'openssl', reason: 'not reachable', expires: '2027-01-31', owner: 'team-a' },
          {
            id: 'GHSA-jfh8-c2jp-5v3q',
            package: { name: 'org.apache.logging.log4j:log4j-core', version: '2.14.1' },
            reason: 'JNDI off',
            expires: '2026-12-01T00:00:00Z',
          },
        ],
      },
      'x.yaml',
    )
    expect(entries[0]).toEqual({
      id: 'CVE-2023-0286',
      package: { name: 'openssl' },
      reason: 'not reachable',
      expires: '2027-01-31',
      expiresAt: Date.parse('2027-01-31T23:59:59.999Z'),
      owner: 'team-a',
    })
    expect(entries[1]).toMatchObject({
      package: { name: 'org.apache.logging.log4j:log4j-core', version: '2.14.1' },
      expiresAt: Date.parse('2026-12-01T00:00:00Z'),
    })
  })

  it.each([
    ['a file without the list', { other: [] }, 'x.yaml: the file: must hold a top-level "exemptions:" list'],
    ['an entry that is text', { exemptions: ['CVE-1'] }, 'x.yaml: entry 1: is not a mapping'],
    ['a missing id', { exemptions: [{ reason: 'r', expires: '2027-01-01' }] }, 'x.yaml: entry 1: "id" is missing'],
    [
      'a missing reason',
      { exemptions: [{ id: 'CVE-1', expires: '2027-01-01' }] },
      'x.yaml: entry 1 (CVE-1): "reason" is missing',
    ],
    [
      'a missing expiry',
      { exemptions: [{ id: 'CVE-1', reason: 'r' }] },
      'x.yaml: entry 1 (CVE-1): "expires" is missing: the last day it applies',
    ],
    [
      'an impossible date',
      { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-02-30' }] },
      '"expires" "2027-02-30" is not a real date',
    ],
    [
      'February 30 with a time',
      { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-02-30T10:00:00Z' }] },
      'entry 1 (CVE-1): "expires" "2027-02-30T10:00:00Z" is not a real date',
    ],
    [
      'hour 25',
      { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01T25:00:00Z' }] },
      '"expires" "2027-01-01T25:00:00Z" is not a real date',
    ],
    ['month 13', { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-13-01T10:00:00Z' }] }, 'is not a real date'],
    [
      'second 60',
      { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01T23:59:60Z' }] },
      'is not a real date',
    ],
    [
      'an offset of 24 hours',
      { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01T10:00:00+24:00' }] },
      'is not a real date',
    ],
    [
      'a misspelt field inside package',
      {
        exemptions: [
          { id: 'CVE-1', reason: 'r', expires: '2027-01-01', package: { name: 'openssl', versions: '3.0.2' } },
        ],
      },
      '"package.versions" is not a field',
    ],
    [
      'a package version that is a list',
      {
        exemptions: [
          { id: 'CVE-1', reason: 'r', expires: '2027-01-01', package: { name: 'openssl', version: ['3.0.2'] } },
        ],
      },
      '"package.version" must be text',
    ],
    [
      'a misspelt field',
      { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01', expiry: 'x' }] },
      '"expiry" is not a field',
    ],
    [
      'a package list',
      { exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01', package: ['a'] }] },
      '"package" must be a name, or a mapping',
    ],
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
  const critical = (expires: string) =>
    policy({
      gate: 'critical',
      exemptions: [exemption({ id: 'CVE-2021-44228', expires }), exemption({ id: 'CVE-2021-45046', expires })],
    })

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
    const result = evaluate(
      sampleImageBody(),
      policy({ gate: 'critical', exemptions: [exemption({ id: 'CVE-2016-2781' })] }),
    )
    expect(result.exemptions.stale).toEqual([])
    expect(result.suppressed).toEqual([])
  })

  it('shows what was suppressed and why', () => {
    const rules = policy({
      exemptions: [exemption({ id: 'CVE-2023-0286', owner: 'team-a', reason: 'X.400 never parsed' })],
    })
    const text = renderText(evaluate(sampleImageBody(), rules), REF, { color: false, policy: rules })
    expect(text).toMatch(
      /Suppressed, would block otherwise:\n {2}HIGH {7}7\.4 {2}CVE-2023-0286 {2}openssl@3\.0\.2-0ubuntu1\.7 {2}exempt until 2027-01-31 \(team-a\): X\.400 never parsed/,
    )
    expect(text).toContain('Policy 1 exemption')
  })
})

describe('--exemptions', () => {
  it('suppresses matching findings, names expired, expiring and stale entries, and still fails on the rest', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate(['--exemptions', files['exemptions.yaml']!])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).toContain('Policy 4 exemptions')
    expect(run.stdout).toMatch(
      /Suppressed, would block otherwise:\n.*CVE-2021-44228 +org\.apache\.logging\.log4j:log4j-core@2\.14\.1 +exempt until \S+ \(team-a\): JNDI lookups disabled/,
    )
    expect(run.stdout).toMatch(/CVE-2021-45046 .* exempt until \S+: same mitigation/)
    expect(run.stdout).toContain(`expired ${inDays(-1)}, no longer applies: CVE-2023-0464`)
    expect(run.stdout).toContain(`expires ${today}, within 14 days: CVE-2021-45046`)
    expect(run.stdout).toContain('stale, matches nothing in this image: CVE-2099-0001')
    expect(run.stdout).toMatch(
      /Blocking findings, worst first:\n +HIGH +7\.5 +CVE-2023-0464 .*\n +HIGH +7\.4 +CVE-2023-0286/,
    )
    expect(run.stdout).toContain('FAIL: 2 vulnerabilities (2 findings) block at gate high.')
  })

  it('passes from POLICY_EXEMPTIONS when every blocking finding is exempt', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate([], { POLICY_EXEMPTIONS: files['exemptions.yaml']!, GATE: 'critical' })
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stdout).toContain('PASS: nothing blocks at gate critical (2 findings suppressed).')
  })

  it.each([
    [
      'a bad date',
      'broken.yaml',
      /broken\.yaml: entry 1 \(CVE-2021-44228\): "expires" "next week" is not a real date: use YYYY-MM-DD/,
    ],
    ['broken YAML', 'not-yaml.yaml', /not-yaml\.yaml: not valid YAML at line \d+/],
    [
      'two YAML documents, one of which would be left unread',
      'two-documents.yaml',
      /two-documents\.yaml: holds 2 YAML documents: put every exemption in one "exemptions:" list/,
    ],
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
