// Straight from the scan: the scanner's CycloneDX through --input, judged by the same evaluation as a store
// body, with each finding's fix state and --only-fixed. The documents are real outputs of Trivy (fix data as
// free text in `recommendation`) and Grype (no fix data); see test/fixtures/cyclonedx/SOURCES.md.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fixesFromRecommendation, isCycloneDx } from '../gate/cyclonedx.ts'
import { evaluate } from '../gate/evaluate.ts'
import { EXIT, type Policy } from '../gate/vocabulary.ts'
import { SAMPLE_DIGEST } from './support/documents.ts'
import { runGate } from './support/gate.ts'

const FIXTURES = new URL('./fixtures/cyclonedx/', import.meta.url)
const TRIVY = new URL('trivy-fluentd.cdx.json', FIXTURES).pathname
const GRYPE = new URL('grype-presenter-image.cdx.json', FIXTURES).pathname
const bom = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
const policy = (fields: Partial<Policy> = {}): Policy => ({
  gate: 'high',
  unknownAs: 'ignore',
  exemptions: [],
  triage: [],
  now: Date.parse('2026-11-28T12:00:00Z'),
  ...fields,
})

describe("evaluating a scanner's CycloneDX", () => {
  it('is told by its content: bomFormat CycloneDX and specVersion 1.4 to 1.7', () => {
    expect(isCycloneDx(bom(TRIVY))).toBe(true)
    expect(isCycloneDx(bom(GRYPE))).toBe(true)
    expect(isCycloneDx({ bomFormat: 'CycloneDX', specVersion: '1.3' })).toBe(false)
    expect(isCycloneDx({ Digest: SAMPLE_DIGEST, Packages: [] })).toBe(false)
  })

  it('judges Trivy findings by their highest rating, with the fix from the recommendation', () => {
    const evaluation = evaluate(bom(TRIVY), policy())
    expect(evaluation.counts).toEqual({ critical: 2, high: 1, medium: 0, low: 0, unknown: 0 })
    expect(
      evaluation.blocking.map((finding) => [finding.id, finding.package, finding.severity, finding.score, finding.fix]),
    ).toEqual([
      ['CVE-2019-18224', 'libidn2-0', 'critical', 9.8, { state: 'fixed', version: '2.0.5-1+deb10u1' }],
      ['CVE-2020-8165', 'activesupport', 'critical', 9.8, { state: 'fixed', version: '6.0.3.1, 5.2.4.3' }],
      ['CVE-2019-18276', 'bash', 'high', 7.8, { state: 'not-fixed' }],
    ])
    expect(evaluation.fixUnknown).toBe(0)
  })

  it('marks Grype findings without fix data as unknown', () => {
    const evaluation = evaluate(bom(GRYPE), policy({ gate: 'low' }))
    expect(
      evaluation.blocking.map((finding) => [finding.id, finding.package, finding.severity, finding.fix.state]),
    ).toEqual([
      ['CVE-1999-0002', 'package-2', 'critical', 'unknown'],
      ['CVE-1999-0001', 'package-1', 'low', 'unknown'],
    ])
    expect(evaluation.fixUnknown).toBe(2)
  })

  it("counts the severity of every rating that has one (KEV's too), skips EPSS, and scores only from CVSS methods", () => {
    const document = {
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      metadata: { tools: [{ vendor: 'anchore', name: 'grype', version: '0.74.0' }] },
      components: [{ 'bom-ref': 'c1', name: 'openssl', version: '3.0.2' }],
      vulnerabilities: [
        {
          id: 'CVE-2024-0001',
          ratings: [
            { severity: 'critical', method: 'other', score: 0.97, source: { name: 'CISA KEV Catalog' } },
            { method: 'other', score: 0.9, source: { name: 'FIRST EPSS' } },
            { severity: 'medium', score: 5.3, method: 'CVSSv31' },
            { severity: 'high', score: 8.8 },
          ],
          affects: [
            {
              ref: 'c1',
              versions: [
                { version: '3.0.2', status: 'affected' },
                { range: 'vers:deb/>=3.0.13', status: 'unaffected' },
              ],
            },
          ],
        },
      ],
    }
    const [finding] = evaluate(document, policy({ gate: 'medium' })).blocking
    expect(finding).toMatchObject({
      severity: 'critical',
      score: 5.3,
      fix: { state: 'fixed', version: 'vers:deb/>=3.0.13' },
    })
  })

  it('reads Trivy recommendations by package, lists and joined recommendations included, and nothing else', () => {
    expect([...fixesFromRecommendation('Upgrade libidn2-0 to version 2.0.5-1+deb10u1')]).toEqual([
      ['libidn2-0', '2.0.5-1+deb10u1'],
    ])
    expect([...fixesFromRecommendation('Upgrade activesupport to version 6.0.3.1, 5.2.4.3')]).toEqual([
      ['activesupport', '6.0.3.1, 5.2.4.3'],
    ])
    expect([
      ...fixesFromRecommendation(
        'Upgrade libssl3 to version 3.0.2-0ubuntu1.15; Upgrade openssl to version 3.0.2-0ubuntu1.15',
      ),
    ]).toEqual([
      ['libssl3', '3.0.2-0ubuntu1.15'],
      ['openssl', '3.0.2-0ubuntu1.15'],
    ])
    expect(fixesFromRecommendation('No fix available').size).toBe(0)
    expect(fixesFromRecommendation(undefined).size).toBe(0)
  })
})

describe('--input with CycloneDX and --only-fixed, the built gate', () => {
  it('fails on the Trivy scan and says which fix each finding has', async () => {
    const run = await runGate(['--gate', 'high', '--input', TRIVY, SAMPLE_DIGEST])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).toMatch(/CRITICAL +9\.8 +CVE-2019-18224 +libidn2-0@2\.0\.5-1 +fixed in 2\.0\.5-1\+deb10u1/)
    expect(run.stdout).toContain('FAIL: 3 vulnerabilities (3 findings) block at gate high.')
    expect(run.stderr).toContain('names no image digest: it is taken to be the scan of')
  })

  it('lets only fixable findings block with --only-fixed, and lists the others as not fixed', async () => {
    const run = await runGate(['--gate', 'high', '--only-fixed', '--format', 'json', '--input', TRIVY, SAMPLE_DIGEST])
    expect(run.code).toBe(EXIT.VIOLATION)
    const report = JSON.parse(run.stdout)
    expect(report.blocking.map((finding: { id: string }) => finding.id)).toEqual(['CVE-2019-18224', 'CVE-2020-8165'])
    expect(report.suppressed).toEqual([
      expect.objectContaining({ id: 'CVE-2019-18276', fix: { state: 'not-fixed' }, suppressedBy: { kind: 'no-fix' } }),
    ])
    const text = await runGate(['--gate', 'high', '--input', TRIVY, SAMPLE_DIGEST], {
      env: { POLICY_ONLY_FIXED: 'true' },
    })
    expect(text.code).toBe(EXIT.VIOLATION)
    expect(text.stdout).toMatch(
      /Suppressed, would block otherwise:\n.*CVE-2019-18276 +bash@5\.0-4 +no fix yet \(--only-fixed\)/,
    )
  })

  it('counts every finding as fixable when the source has no fix data, and says so', async () => {
    const run = await runGate(['--gate', 'critical', '--only-fixed', '--input', GRYPE, SAMPLE_DIGEST])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).toContain('--only-fixed: the source does not say whether 2 findings have a fix')
    expect(run.stdout).toContain('FAIL: 1 vulnerability (1 finding) blocks at gate critical.')
  })

  it('refuses a CycloneDX document that names another digest', async () => {
    const other = `sha256:${'b'.repeat(64)}`
    const document = {
      ...bom(GRYPE),
      metadata: { component: { type: 'container', name: `registry.example.com/app@${other}` } },
    }
    const run = await runGate(['--gate', 'high', '--input', '-', SAMPLE_DIGEST], { stdin: JSON.stringify(document) })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain(`it describes ${other}, not ${SAMPLE_DIGEST}`)
  })

  it('needs no image argument when the document names the digest it scanned', async () => {
    const document = {
      ...bom(TRIVY),
      metadata: { component: { type: 'container', name: `registry.example.com/fluentd@${SAMPLE_DIGEST}` } },
    }
    const run = await runGate(['--gate', 'high', '--format', 'json', '--input', '-'], {
      stdin: JSON.stringify(document),
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(JSON.parse(run.stdout).image).toEqual({ reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST })
    const storeBody = await runGate(['--gate', 'critical', '--input', '-'], {
      stdin: JSON.stringify({ Digest: SAMPLE_DIGEST, Packages: [] }),
    })
    expect(storeBody.code).toBe(EXIT.PASS)
    expect(storeBody.stdout).toContain(`Image  ${SAMPLE_DIGEST}`)
  })

  it('judges a document that names no digest without an image argument, as the scan of its subject', async () => {
    const run = await runGate(['--gate', 'high', '--input', GRYPE])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stderr).toContain(`--input ${GRYPE} names no image digest: judged as the scan of --input ${GRYPE}`)
    expect(run.stdout.split('\n')[0]).toBe(`Scan of --input ${GRYPE} (names no image digest)`)
  })
})

describe("the scan's own triage: CycloneDX analysis (VEX inside the scan)", () => {
  const IMAGE_DIGEST = `sha256:${'c'.repeat(64)}`
  const rating = (severity: string) => [{ source: { name: 'nvd' }, severity }]
  /** A scan of one image: openssl and log4j, each vulnerability with the analysis given. */
  const scan = (
    vulnerabilities: Array<{ id: string; ref: string; analysis?: Record<string, unknown>; severity?: string }>,
  ) => ({
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    metadata: { component: { type: 'container', name: 'registry.example.com/app', version: IMAGE_DIGEST } },
    components: [
      { 'bom-ref': 'openssl', type: 'library', name: 'openssl', version: '3.0.2' },
      { 'bom-ref': 'log4j', type: 'library', name: 'log4j-core', version: '2.14.1' },
    ],
    vulnerabilities: vulnerabilities.map(({ id, ref, analysis, severity }) => ({
      id,
      ratings: rating(severity ?? 'critical'),
      affects: [{ ref }],
      ...(analysis ? { analysis } : {}),
    })),
  })
  const triaged = scan([
    {
      id: 'CVE-2022-0001',
      ref: 'openssl',
      analysis: { state: 'not_affected', justification: 'code_not_reachable', detail: 'TLS is off' },
    },
    { id: 'CVE-2022-0002', ref: 'openssl', analysis: { state: 'false_positive' } },
    { id: 'CVE-2022-0003', ref: 'log4j', analysis: { state: 'exploitable', response: ['update'] } },
    { id: 'CVE-2022-0004', ref: 'log4j', analysis: { state: 'in_triage' } },
    { id: 'CVE-2022-0005', ref: 'log4j' },
  ])

  it('suppresses not_affected and false_positive with --triage, with the justification and detail, and nothing else', () => {
    const honoured = evaluate(triaged, policy({ documentTriage: true }))
    expect(honoured.blocking.map((finding) => finding.id)).toEqual(['CVE-2022-0003', 'CVE-2022-0004', 'CVE-2022-0005'])
    expect(honoured.suppressed.map((finding) => [finding.id, finding.suppressedBy])).toEqual([
      ['CVE-2022-0001', { kind: 'triage', state: 'not_affected', justification: 'code_not_reachable: TLS is off' }],
      ['CVE-2022-0002', { kind: 'triage', state: 'false_positive' }],
    ])
    expect(evaluate(triaged, policy()).blocking).toHaveLength(5)
  })

  it('suppresses nothing when two statements on one finding disagree (the CISA VEX cases do), and never a KEV-listed one', () => {
    const conflicting = scan([
      { id: 'CVE-2022-0001', ref: 'openssl', analysis: { state: 'not_affected', justification: 'code_not_present' } },
      { id: 'CVE-2022-0001', ref: 'openssl', analysis: { state: 'exploitable' } },
    ])
    expect(evaluate(conflicting, policy({ documentTriage: true })).blocking.map((finding) => finding.id)).toEqual([
      'CVE-2022-0001',
    ])
    const case8 = evaluate(
      bom(new URL('cisa-case-8.vex.json', FIXTURES).pathname),
      policy({ documentTriage: true, gate: 'low' }),
    )
    expect(case8.suppressed).toEqual([])
    const kev = new Map([['CVE-2022-0001', { dateAdded: '2022-01-10' }]])
    const listed = evaluate(triaged, policy({ documentTriage: true, kev }))
    expect(listed.blocking.map((finding) => finding.id)).toContain('CVE-2022-0001')
  })

  it('honours the analysis through the built gate with --input and POLICY_TRIAGE, and says whose triage it is', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'vex-in-scan-')), 'scan.cdx.json')
    writeFileSync(file, JSON.stringify(triaged))
    const run = await runGate(['--gate', 'high', '--input', file, '--format', 'text'], {
      env: { POLICY_TRIAGE: 'true' },
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).toContain("the scan's own triage (its CycloneDX analysis)")
    expect(run.stdout).toMatch(/CVE-2022-0001 .*triage not_affected: code_not_reachable: TLS is off/)
    expect(run.stdout).toContain('FAIL: 3 vulnerabilities (3 findings) block at gate high.')
    const untriaged = await runGate(['--gate', 'high', '--input', file])
    expect(untriaged.stdout).toContain('FAIL: 5 vulnerabilities (5 findings) block at gate high.')
  })
})
