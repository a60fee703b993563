// The accounting rule as a property: for generated CycloneDX documents (affects missing, empty or naming
// unknown refs, ratings of every method with and without severities, scores and vectors, statements repeated
// as VEX files repeat them, producers' metadata in both shapes), every vulnerability ID of the input is in the
// JSON report as judged (blocking, suppressed, warning or passing), and nothing at or above the gate passes.
// The oracle is written here, apart from the gate: a rating that says "critical" makes its vulnerability
// block at gate critical, whatever else the document says. CI runs a fixed seed; FUZZ_SEED explores.
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { loadCvssScorer, type CvssScorer } from '../gate/cyclonedx.ts'
import { evaluate } from '../gate/evaluate.ts'
import { buildJsonReport } from '../gate/render.ts'
import { EXIT, NoVerdictError, type Gate } from '../gate/vocabulary.ts'
import { runGate, writeFiles } from './support/gate.ts'

const seed = Number(process.env.FUZZ_SEED ?? (process.env.CI ? 20_261_202 : Date.now() % 2 ** 31))
console.info(`accounting property with FUZZ_SEED=${seed}`)

const REFS = ['pkg:deb/openssl@3.0.2', 'pkg:npm/lodash@4.17.20', 'urn:cdx:other-bom/1#product']
const rating = fc.record(
  {
    severity: fc.constantFrom('critical', 'High', 'MEDIUM', 'low', 'none', 'unknown', 'info', 'severe', ''),
    method: fc.constantFrom('CVSSv2', 'CVSSv3', 'CVSSv31', 'CVSSv4', 'other', 'OWASP', 'ssvc'),
    score: fc.oneof(fc.double({ min: 0, max: 10, noNaN: true }), fc.constant(0.97)),
    vector: fc.constantFrom(
      'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      'AV:N/AC:L/Au:N/C:C/I:C/A:C',
      'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
      'CVSS:4.0/AV:N',
      '1',
      'high',
    ),
    source: fc.constantFrom({ name: 'NVD' }, { name: 'CISA KEV Catalog' }, { name: 'FIRST' }),
  },
  { requiredKeys: [] },
)
const affect = fc.record(
  {
    ref: fc.constantFrom(...REFS, 'not-a-component', ''),
    versions: fc.array(
      fc.record({ version: fc.constant('1'), status: fc.constantFrom('affected', 'unaffected', 'unknown') }),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
)
const vulnerability = fc.record(
  {
    id: fc.constantFrom('CVE-2021-44228', 'CVE-2022-0001', 'GHSA-xxxx-yyyy-zzzz', 'OSV-1', ''),
    ratings: fc.array(rating, { maxLength: 4 }),
    affects: fc.array(affect, { maxLength: 3 }),
    recommendation: fc.constantFrom(
      'Upgrade openssl to version 3.0.15',
      'No fix',
      'Upgrade a to version 1; Upgrade lodash to version 4.17.21',
    ),
    analysis: fc.record({ state: fc.constantFrom('exploitable', 'not_affected', 'in_triage') }),
  },
  { requiredKeys: ['id'] },
)
const tools = fc.constantFrom(
  undefined,
  [{ vendor: 'aquasecurity', name: 'trivy' }],
  { components: [{ name: 'grype', author: 'anchore' }] },
  { components: [{ name: 'osv-scanner' }] },
  [{ name: 'trivy' }, { name: 'grype' }],
)
const document = fc.record({
  specVersion: fc.constantFrom('1.4', '1.5', '1.6', '1.7'),
  tools,
  subject: fc.option(fc.record({ name: fc.constant('app'), version: fc.constant('1.0') }), { nil: undefined }),
  vulnerabilities: fc.array(vulnerability, { maxLength: 8 }),
})

type Generated = typeof document extends fc.Arbitrary<infer T> ? T : never

function bomOf(generated: Generated): Record<string, unknown> {
  return {
    bomFormat: 'CycloneDX',
    specVersion: generated.specVersion,
    metadata: {
      ...(generated.tools ? { tools: generated.tools } : {}),
      ...(generated.subject ? { component: generated.subject } : {}),
    },
    components: REFS.slice(0, 2).map((ref) => ({
      'bom-ref': ref,
      name: ref.split('/')[1]!.split('@')[0],
      version: ref.split('@')[1],
    })),
    vulnerabilities: generated.vulnerabilities,
  }
}

let cvss: CvssScorer
beforeAll(async () => {
  cvss = await loadCvssScorer()
})

describe('every vulnerability is accounted for', () => {
  it.each(['critical', 'high', 'low'] as Gate[])(
    'at gate %s, in the JSON report, and nothing at or above the gate passes',
    (gate) => {
      fc.assert(
        fc.property(document, (generated) => {
          const bom = bomOf(generated)
          const report = buildJsonReport(
            { image: null, gate },
            {
              evaluation: evaluate(
                bom,
                { gate, unknownAs: 'ignore', exemptions: [], triage: [], now: 0 },
                undefined,
                cvss,
              ),
            },
          )
          const listed = [...report.blocking, ...report.suppressed, ...report.warnings, ...report.passing]
          const ids = new Set(generated.vulnerabilities.map((v, index) => v.id || `vulnerabilities[${index}]`))
          expect(new Set(listed.map((finding) => finding.id))).toEqual(ids)
          expect(listed).toHaveLength(report.findings!)
          const rank = { unknown: 0, low: 1, medium: 2, high: 3, critical: 4 } as const
          for (const finding of [...report.warnings, ...report.passing])
            expect(rank[finding.severity]).toBeLessThan(rank[gate as 'critical' | 'high' | 'low'])
          // The oracle: a rating that says critical blocks, whoever wrote the document and whatever it repeats.
          for (const [index, v] of generated.vulnerabilities.entries()) {
            if (v.ratings?.some((r) => r.severity === 'critical'))
              expect(report.blocking.map((finding) => finding.id)).toContain(v.id || `vulnerabilities[${index}]`)
          }
          expect(report.verdict).toBe(report.blocking.length ? 'fail' : 'pass')
        }),
        { seed, numRuns: 300 },
      )
    },
  )

  it('ends with no verdict, never a pass, on documents whose parts are not what they should be', () => {
    const broken = fc.oneof(
      fc.constant({ vulnerabilities: [1] }),
      fc.constant({ vulnerabilities: [{ id: 'CVE-1', ratings: [1] }] }),
      fc.constant({ vulnerabilities: [{ id: 'CVE-1', affects: ['ref'] }] }),
      fc.constant({ vulnerabilities: 'many' }),
      fc.constant({ components: [null] }),
      fc.constant({ components: [{ 'bom-ref': 'a', components: 'nested' }] }),
    )
    fc.assert(
      fc.property(broken, (parts) => {
        expect(() =>
          evaluate({ bomFormat: 'CycloneDX', specVersion: '1.6', ...parts }, 'low', undefined, cvss),
        ).toThrow(NoVerdictError)
      }),
      { seed, numRuns: 30 },
    )
  })

  it('the built gate agrees on a few generated documents: exit 1 exactly when the report blocks', async () => {
    const samples = fc.sample(document, { seed, numRuns: 6 })
    for (const generated of samples) {
      const files = writeFiles({ 'scan.cdx.json': JSON.stringify(bomOf(generated)) })
      const run = await runGate(['--gate', 'high', '--format', 'json', '--input', files['scan.cdx.json']!])
      const report = JSON.parse(run.stdout)
      expect(run.code).toBe(report.blocking.length ? EXIT.VIOLATION : EXIT.PASS)
      expect(report.findings).toBe(
        report.blocking.length + report.suppressed.length + report.warnings.length + report.passing.length,
      )
    }
  })
})
