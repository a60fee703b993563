// The world's files: real CycloneDX from six producers (test/fixtures/cyclonedx/SOURCES.md), each judged by the
// gate and compared with an independent reading written here in a few lines. The reading is deliberately
// naive (no producer rules, no merging logic of the gate's): distinct (vulnerability, affected ref) pairs, a
// vulnerability without `affects` counted once against the document's subject, and the worst severity any
// statement gives the pair. Where the two disagree, one of them misreads the file.
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { loadCvssScorer, type CvssScorer } from '../gate/cyclonedx.ts'
import { evaluate } from '../gate/evaluate.ts'
import { EXIT, type Policy } from '../gate/vocabulary.ts'
import { runGate } from './support/gate.ts'

const FIXTURES = new URL('./fixtures/cyclonedx/', import.meta.url)
const path = (name: string) => new URL(name, FIXTURES).pathname
const read = (name: string) => JSON.parse(readFileSync(path(name), 'utf8')) as Record<string, unknown>
const policy = (fields: Partial<Policy> = {}): Policy => ({
  gate: 'high',
  unknownAs: 'ignore',
  exemptions: [],
  triage: [],
  now: Date.parse('2026-12-01T00:00:00Z'),
  ...fields,
})

type Vulnerability = { id: string; ratings?: Array<{ severity?: string }>; affects?: Array<{ ref: string }> }

/** The independent reading: distinct (id, ref) pairs, and the IDs. */
function pairsOf(document: Record<string, unknown>): { pairs: Set<string>; ids: Set<string> } {
  const pairs = new Set<string>()
  const ids = new Set<string>()
  for (const vulnerability of document.vulnerabilities as Vulnerability[]) {
    ids.add(vulnerability.id)
    const refs = vulnerability.affects?.length ? vulnerability.affects.map((affect) => affect.ref) : ['(subject)']
    for (const ref of refs) pairs.add(`${vulnerability.id} ${ref}`)
  }
  return { pairs, ids }
}

const CORPUS = [
  'trivy-fluentd.cdx.json',
  'grype-presenter-image.cdx.json',
  'grype-1.7-image.cdx.json',
  'grype-0.41-log4j.cdx.json',
  'osv-scanner-1.4.cdx.json',
  'defectdojo-no-severity.cdx.json',
  'cisa-case-7.vex.json',
  'cisa-case-8.vex.json',
]

let cvss: CvssScorer
beforeAll(async () => {
  cvss = await loadCvssScorer()
})

describe('real CycloneDX, against an independent reading', () => {
  it.each(CORPUS)('%s: every (vulnerability, component) pair is judged exactly once', (name) => {
    const document = read(name)
    const { pairs, ids } = pairsOf(document)
    const evaluation = evaluate(document, policy({ gate: 'low' }), undefined, cvss)
    expect(evaluation.findings).toBe(pairs.size)
    expect(evaluation.uniqueVulnerabilities).toBe(ids.size)
    // Accounted for: every pair is in one list of the report, none twice.
    const judged = [...evaluation.blocking, ...evaluation.suppressed, ...evaluation.warnings, ...evaluation.passing]
    expect(judged).toHaveLength(pairs.size)
    expect(new Set(judged.map((finding) => finding.id))).toEqual(ids)
  })

  it('counts the CISA VEX use cases 7 and 8 by distinct pair: 2 and 4 findings, not 5 and 11 statements', () => {
    expect(evaluate(read('cisa-case-7.vex.json'), policy(), undefined, cvss).findings).toBe(2)
    const case8 = evaluate(read('cisa-case-8.vex.json'), policy(), undefined, cvss)
    expect(case8.findings).toBe(4)
    // Log4Shell is exploitable in ABC and JKL: its worst statement (critical) decides, whatever later statements say.
    expect(
      case8.blocking
        .filter((finding) => finding.id === 'CVE-2021-44228')
        .map((finding) => [finding.package, finding.severity, finding.fix.state]),
    ).toEqual([
      ['urn:cdx:cbb2cd68-2857-43b8-a10b-e8c03d277d18/1#product-ABC', 'critical', 'unknown'],
      ['urn:cdx:e4c3eedc-4978-470c-ad02-6ffff63738ff/1#product-JKL', 'critical', 'unknown'],
    ])
  })

  it('does not let --only-fixed pass an exploitable Log4Shell because the VEX has unaffected ranges elsewhere', () => {
    for (const name of ['cisa-case-7.vex.json', 'cisa-case-8.vex.json']) {
      const evaluation = evaluate(read(name), policy({ gate: 'critical', onlyFixed: true }), undefined, cvss)
      expect(evaluation.passed).toBe(false)
      expect(evaluation.suppressed).toEqual([])
    }
  })

  it('reads fixes by producer: Grype 1.7 ranges and affected-only pairs, Grype 0.41 properties, Trivy recommendations', () => {
    const fixes = (name: string) =>
      Object.fromEntries(
        evaluate(read(name), policy({ gate: 'low' }), undefined, cvss).blocking.map((finding) => [
          `${finding.id} ${finding.package}`,
          finding.fix,
        ]),
      )
    expect(fixes('grype-1.7-image.cdx.json')).toEqual({
      'CVE-1999-0001 package-1': {
        state: 'fixed',
        version: 'vers:generic/>=1.2.1, vers:generic/>=2.1.3, vers:generic/>=3.4.0',
      },
      'CVE-1999-0002 package-2': { state: 'not-fixed' },
    })
    const log4j = fixes('grype-0.41-log4j.cdx.json')
    expect(log4j['GHSA-jfh8-c2jp-5v3q log4j-core']).toEqual({ state: 'fixed', version: '2.15.0' })
    // Grype 0.41 wrote no versions: a CVE entry without the property has an unknown fix, never "not fixed".
    expect(log4j['CVE-2021-44228 log4j-core']).toEqual({ state: 'unknown' })
    expect(fixes('trivy-fluentd.cdx.json')['CVE-2019-18276 bash']).toEqual({ state: 'not-fixed' })
  })

  it('counts the KEV rating of Grype and the severity it gives', () => {
    const [kev] = evaluate(read('grype-1.7-image.cdx.json'), policy({ gate: 'critical' }), undefined, cvss).blocking
    expect(kev).toMatchObject({ id: 'CVE-1999-0002', severity: 'critical', kev: {} })
  })

  it("takes the severity of a score without one (DefectDojo's no-severity file): CVSS 10.0 is critical", () => {
    const [finding] = evaluate(
      read('defectdojo-no-severity.cdx.json'),
      policy({ gate: 'critical' }),
      undefined,
      cvss,
    ).blocking
    expect(finding).toMatchObject({ id: 'CVE-2021-44228', severity: 'critical', score: 10, package: 'gerbwetbqt' })
  })

  it("judges osv-scanner's vulnerabilities without affects against the subject, and scores its vectors", () => {
    const evaluation = evaluate(read('osv-scanner-1.4.cdx.json'), policy({ gate: 'low' }), undefined, cvss)
    expect(evaluation.counts).toEqual({ critical: 0, high: 1, medium: 0, low: 0, unknown: 3 })
    expect(evaluation.blocking.map((finding) => [finding.id, finding.package, finding.severity])).toEqual([
      ['OSV-2', '(the scanned subject)', 'high'],
    ])
    // A vector the calculator cannot score ("1") gives no severity: unknown, which --unknown-as can block.
    expect(
      new Set(
        evaluate(
          read('osv-scanner-1.4.cdx.json'),
          policy({ gate: 'high', unknownAs: 'high' }),
          undefined,
          cvss,
        ).blocking.map((finding) => finding.id),
      ),
    ).toEqual(new Set(['OSV-1', 'OSV-2', 'OSV-3', 'OSV-5']))
  })
})

describe('ratings with only a vector or only a score', () => {
  const withRating = (rating: Record<string, unknown>, affects: unknown[] = [{ ref: 'c' }]) => ({
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    metadata: { component: { name: 'app', version: '1.0' } },
    components: [{ 'bom-ref': 'c', name: 'lib', version: '1' }],
    vulnerabilities: [{ id: 'CVE-2024-0001', ratings: [rating], affects }],
  })
  it.each([
    [
      'CVSS 3.1 vector of 9.8',
      { method: 'CVSSv31', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' },
      'critical',
      9.8,
    ],
    [
      'CVSS 3.0 vector of 7.5',
      { method: 'CVSSv3', vector: 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H' },
      'high',
      7.5,
    ],
    [
      "CVSS 2 vector of 10.0 (NVD's v2 scale has no critical)",
      { method: 'CVSSv2', vector: 'AV:N/AC:L/Au:N/C:C/I:C/A:C' },
      'high',
      10,
    ],
    [
      'CVSS 4.0 vector of 9.3',
      { method: 'CVSSv4', vector: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' },
      'critical',
      9.3,
    ],
    ['vector without a method', { vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N' }, 'medium', 5.3],
    ['incomplete vector (no base score)', { method: 'CVSSv4', vector: 'CVSS:4.0/AV:N' }, 'unknown', null],
    [
      'a metric named twice',
      { method: 'CVSSv31', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/AV:L' },
      'unknown',
      null,
    ],
    ['not a vector', { method: 'CVSSv31', vector: 'high' }, 'unknown', null],
    ['score only, CVSS method', { method: 'CVSSv31', score: 7.2 }, 'high', 7.2],
    ['score only, EPSS', { method: 'other', score: 0.97, source: { name: 'FIRST' } }, 'unknown', null],
    [
      '"other" with a severity',
      { method: 'other', severity: 'critical', source: { name: 'a vendor' } },
      'critical',
      null,
    ],
  ])('%s', (_name, rating, severity, score) => {
    const [finding] = [
      ...evaluate(withRating(rating), policy({ gate: 'low' }), undefined, cvss).blocking,
      ...evaluate(withRating(rating), policy({ gate: 'low' }), undefined, cvss).passing,
    ]
    expect(finding).toMatchObject({ severity, score })
  })

  it('feeds a computed score to --fail-on-score', () => {
    const evaluation = evaluate(
      withRating({ method: 'CVSSv31', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }),
      policy({ gate: 'none', failOnScore: 9 }),
      undefined,
      cvss,
    )
    expect(evaluation.blocking).toEqual([expect.objectContaining({ rule: 'score', score: 9.8 })])
  })

  it('judges a vulnerability with `affects` missing or empty against metadata.component, so it can block', () => {
    for (const affects of [undefined, []]) {
      const document = withRating({ severity: 'critical' }, affects as unknown[])
      if (affects === undefined) delete (document.vulnerabilities[0] as Record<string, unknown>).affects
      expect(evaluate(document, policy(), undefined, cvss).blocking).toEqual([
        expect.objectContaining({ id: 'CVE-2024-0001', package: 'app', version: '1.0' }),
      ])
    }
  })

  it('refuses a CycloneDX version it does not read (exit 3 in the gate), instead of reading it as nothing', () => {
    expect(() => evaluate({ bomFormat: 'CycloneDX', specVersion: '1.8', vulnerabilities: [] }, policy())).toThrow(
      /specVersion is "1.8": the gate reads CycloneDX 1.4 to 1.7/,
    )
  })
})

describe('the real files through the built gate', () => {
  it('fails on the VEX with an exploitable Log4Shell under --only-fixed, naming the products', async () => {
    const run = await runGate([
      '--gate',
      'critical',
      '--only-fixed',
      '--format',
      'json',
      '--input',
      path('cisa-case-8.vex.json'),
      `sha256:${'c'.repeat(64)}`,
    ])
    expect(run.code).toBe(EXIT.VIOLATION)
    const report = JSON.parse(run.stdout)
    expect(report.findings).toBe(4)
    expect(report.blocking.map((finding: { id: string }) => finding.id)).toEqual(['CVE-2021-44228', 'CVE-2021-44228'])
    // A statement's "none" is a severity, not an absent one: the environmental vector beside it is not rescored.
    expect(report.passing.map((finding: { id: string; severity: string }) => [finding.id, finding.severity])).toEqual([
      ['CVE-2021-45105', 'medium'],
      ['CVE-2021-45105', 'medium'],
    ])
  })

  it("blocks on osv-scanner's vector-only file through --input", async () => {
    const run = await runGate([
      '--gate',
      'high',
      '--input',
      path('osv-scanner-1.4.cdx.json'),
      `sha256:${'c'.repeat(64)}`,
    ])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).toMatch(/HIGH +- +OSV-2 +\(the scanned subject\)/)
  })
})
