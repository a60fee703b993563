// What teams adopting a gate keep asking for, on the one evaluation path: a warning tier (--warn-at), CISA's
// known-exploited catalog (--kev, and Grype's KEV ratings), and "no new vulnerabilities" (--baseline).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { basePolicy, baselineFrom, evaluate, kevCatalogFrom } from '../gate/evaluate.ts'
import { exemptionsFrom } from '../gate/input.ts'
import { buildJsonReport, renderJunit, renderSarif, renderText, tektonResults } from '../gate/render.ts'
import { EXIT, type Policy } from '../gate/vocabulary.ts'
import {
  cycloneDxOf,
  image,
  pkg,
  rating,
  SAMPLE_DIGEST,
  SAMPLE_IMAGE,
  sampleImageBody,
  vuln,
} from './support/documents.ts'
import { useStoreFixture } from './support/fixture.ts'
import { runGate, writeFiles } from './support/gate.ts'
import { validateSarif } from './support/sarif.ts'
import { answer } from './support/simulator.ts'

const NOW = Date.parse('2026-11-28T12:00:00Z')
const KEV_TEXT = readFileSync(new URL('./fixtures/kev/known_exploited_vulnerabilities.json', import.meta.url), 'utf8')
const KEV = kevCatalogFrom(JSON.parse(KEV_TEXT), 'kev.json')
const policy = (fields: Partial<Policy> = {}): Policy => ({ ...basePolicy('high', NOW), ...fields })
const REF = { reference: SAMPLE_IMAGE, digest: SAMPLE_DIGEST }
const withReleased = (days: number) => {
  const catalog = JSON.parse(KEV_TEXT)
  catalog.dateReleased = new Date(Date.now() - days * 86_400_000).toISOString()
  return JSON.stringify(catalog)
}

describe('--warn-at: report everything, fail on some', () => {
  it('lists what does not block from the warning level up, and leaves the verdict alone', () => {
    const evaluation = evaluate(sampleImageBody(), policy({ gate: 'critical', warnAt: 'medium' }))
    expect(evaluation.blocking.map((finding) => finding.id)).toEqual(['CVE-2021-44228', 'CVE-2021-45046'])
    expect(evaluation.warnings.map((finding) => [finding.id, finding.warnedBy])).toEqual([
      ['CVE-2023-0464', 'warn-at'],
      ['CVE-2023-0286', 'warn-at'],
      ['CVE-2016-2781', 'warn-at'],
    ])
    const report = buildJsonReport({ image: REF, gate: 'critical' }, { evaluation })
    expect(tektonResults(report)).toMatchObject({ verdict: 'fail', warnings: '3' })
    expect(renderText(evaluation, REF, { color: false })).toMatch(
      /Warnings, do not block:\n +HIGH +7\.5 +CVE-2023-0464/,
    )
    const sarif = JSON.parse(renderSarif(report))
    expect(validateSarif(sarif), JSON.stringify(validateSarif.errors)).toBe(true)
    expect(sarif.runs[0].results.filter((result: { level: string }) => result.level === 'warning')).toHaveLength(3)
    expect(renderJunit(report)).toContain(
      '<system-out>WARNING: CVE-2023-0464 (high) at or above --warn-at</system-out>',
    )
  })

  it('from flag and env in the built gate, exit code unchanged; refused at or above the gate', async () => {
    const input = writeFiles({ 'body.json': JSON.stringify(sampleImageBody()) })['body.json']!
    const run = await runGate(['--input', input, '--format', 'json', SAMPLE_IMAGE], {
      env: { GATE: 'critical', POLICY_WARN_AT: 'low' },
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(JSON.parse(run.stdout).warnings).toHaveLength(3)
    const clean = await runGate(['--input', input, '--gate', 'critical', '--warn-at', 'medium', SAMPLE_IMAGE], {
      env: {},
    })
    expect(clean.stdout).toContain('Warnings, do not block:')
    const refused = await runGate(['--input', input, '--gate', 'high', '--warn-at', 'high', SAMPLE_IMAGE], { env: {} })
    expect(refused.code).toBe(EXIT.USAGE)
    expect(refused.stderr).toContain(
      '--warn-at high with --gate high: warnings are what does not block, so below the gate (high): use low, medium',
    )
  })
})

describe('--kev: known-exploited vulnerabilities', () => {
  it("reads CISA's catalog and refuses what is not one", () => {
    expect(KEV.entries.get('CVE-2021-44228')).toEqual({
      dateAdded: '2021-12-10',
      dueDate: '2021-12-24',
      ransomware: 'Known',
    })
    expect(KEV.version).toBe('2026.11.25')
    expect(() => kevCatalogFrom({ vulnerabilities: 'x' }, 'k')).toThrow(/has no "vulnerabilities" list/)
    expect(() => kevCatalogFrom({ dateReleased: '2026-01-01', vulnerabilities: [{ cveID: 'nope' }] }, 'k')).toThrow(
      /vulnerabilities\[0\] has no cveID/,
    )
    expect(() => kevCatalogFrom({ dateReleased: 'yesterday', vulnerabilities: [] }, 'k')).toThrow(
      /"dateReleased" "yesterday" is not a date/,
    )
  })

  it('blocks a listed CVE whatever its severity and the gate, saying since when it is exploited', () => {
    const body = image(
      pkg('log4j', '2.14.1', vuln('CVE-2021-44228', rating('Low', 3.1))),
      pkg('zlib', '1.2', vuln('CVE-2022-0001', rating('Low'))),
    )
    const evaluation = evaluate(body, policy({ gate: 'critical', kev: KEV.entries }))
    expect(evaluation.blocking).toEqual([
      expect.objectContaining({
        id: 'CVE-2021-44228',
        severity: 'low',
        rule: 'kev',
        kev: { dateAdded: '2021-12-10', dueDate: '2021-12-24', ransomware: 'Known' },
      }),
    ])
    expect(evaluation.knownExploited).toBe(1)
    expect(renderText(evaluation, REF, { color: false })).toContain(
      'known exploited since 2021-12-10 (due 2021-12-24), used by ransomware',
    )
    const report = buildJsonReport({ image: REF, gate: 'critical' }, { evaluation })
    expect(tektonResults(report)).toMatchObject({ kev: '1', blocking: 'CVE-2021-44228' })
    const sarif = JSON.parse(renderSarif(report))
    expect(validateSarif(sarif), JSON.stringify(validateSarif.errors)).toBe(true)
    expect(sarif.runs[0].results[0].properties.knownExploited).toEqual({
      dateAdded: '2021-12-10',
      dueDate: '2021-12-24',
      ransomware: 'Known',
    })
    expect(sarif.runs[0].tool.driver.rules[0].properties.tags).toContain('known-exploited')
    expect(renderJunit(report)).toContain('known exploited since 2021-12-10 (due 2021-12-24)')
  })

  it("counts Grype's KEV rating (method other, source CISA KEV Catalog) as known exploited", () => {
    const bom = JSON.parse(cycloneDxOf(SAMPLE_DIGEST, 'low'))
    bom.vulnerabilities[0].ratings.push({
      source: { name: 'CISA KEV Catalog' },
      method: 'other',
      score: 1,
      justification: 'Listed in CISA KEV',
    })
    const evaluation = evaluate(bom, policy({ gate: 'critical' }))
    expect(evaluation.blocking).toEqual([expect.objectContaining({ id: 'CVE-2024-9999', rule: 'kev', kev: {} })])
    expect(renderText(evaluation, REF, { color: false })).toContain("known exploited (a scanner's KEV rating)")
  })

  it('yields only to an exemption that says kev: accepted, and shows those prominently', () => {
    const exemptions = exemptionsFrom(
      {
        exemptions: [
          { id: 'CVE-2021-44228', reason: 'JNDI disabled', expires: '2027-01-31' },
          { id: 'CVE-2021-45046', reason: 'mitigated by WAF', expires: '2027-01-31', kev: 'accepted' },
        ],
      },
      'x.yaml',
    )
    const evaluation = evaluate(sampleImageBody(), policy({ gate: 'critical', kev: KEV.entries, exemptions }))
    expect(evaluation.blocking.map((finding) => finding.id)).toEqual(['CVE-2021-44228'])
    expect(evaluation.suppressed.map((finding) => finding.id)).toEqual(['CVE-2021-45046'])
    const text = renderText(evaluation, REF, { color: false })
    expect(text).toContain('Known exploited, yet suppressed (kev: accepted, --vex-accepts-kev): 1 finding')
    expect(text).toContain('not applied to a known-exploited finding (add kev: accepted to apply it): CVE-2021-44228')
    expect(() =>
      exemptionsFrom({ exemptions: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-31', kev: true }] }, 'x.yaml'),
    ).toThrow(/"kev" may only be "accepted"/)
  })

  it('in the built gate: warns about an old catalog, refuses a malformed one (exit 2)', async () => {
    const files = writeFiles({
      'body.json': JSON.stringify(sampleImageBody()),
      'fresh.json': withReleased(2),
      'old.json': withReleased(45),
      'bad.json': '{"vulnerabilities": 3}',
      'not-json.json': '<html>',
    })
    const fresh = await runGate(['--input', files['body.json']!, '--kev', files['fresh.json']!, SAMPLE_IMAGE], {
      env: { GATE: 'critical', POLICY_RESULTS_DIR: '' },
    })
    expect(fresh.code).toBe(EXIT.VIOLATION)
    expect(fresh.stderr).not.toContain('released')
    const old = await runGate(['--input', files['body.json']!, SAMPLE_IMAGE], {
      env: { GATE: 'critical', POLICY_KEV: files['old.json']! },
    })
    expect(old.stderr).toMatch(
      /warning: the KEV catalog .* \(version 2026\.11\.25\) was released 45 days ago: refresh it/,
    )
    for (const bad of ['bad.json', 'not-json.json']) {
      const run = await runGate(['--input', files['body.json']!, '--kev', files[bad]!, SAMPLE_IMAGE], {
        env: { GATE: 'critical' },
      })
      expect(run.code, bad).toBe(EXIT.USAGE)
      expect(run.stderr).toMatch(/is not (CISA's KEV catalog|JSON)/)
    }
  })
})

describe('--baseline: no new vulnerabilities', () => {
  const running = image(
    pkg(
      'openssl',
      '3.0.2-0ubuntu1.7',
      vuln('CVE-2023-0286', rating('High', 7.4)),
      vuln('CVE-2023-0464', rating('Medium', 5)),
    ),
    pkg('org.apache.logging.log4j:log4j-core', '2.14.1', vuln('CVE-2021-44228', rating('Critical', 10))),
  )

  it('blocks only on new (vulnerability, package) pairs or worse ones; the inherited are warnings', () => {
    const evaluation = evaluate(sampleImageBody(), policy({ baseline: baselineFrom(running) }))
    // CVE-2023-0464 was medium in the running image and is high now: worse, so it blocks.
    expect(evaluation.blocking.map((finding) => finding.id)).toEqual(['CVE-2021-45046', 'CVE-2023-0464'])
    expect(evaluation.warnings.map((finding) => [finding.id, finding.warnedBy])).toEqual([
      ['CVE-2021-44228', 'baseline'],
      ['CVE-2023-0286', 'baseline'],
    ])
    expect(renderText(evaluation, REF, { color: false })).toContain(
      'inherited from the baseline (the running image has it too)',
    )
  })

  it('still applies exemptions, and their expiry, to inherited findings', () => {
    const exemptions = exemptionsFrom(
      {
        exemptions: [
          { id: 'CVE-2021-44228', reason: 'JNDI disabled', expires: '2027-01-31' },
          { id: 'CVE-2023-0286', reason: 'old', expires: '2020-01-01' },
        ],
      },
      'x.yaml',
    )
    const evaluation = evaluate(sampleImageBody(), policy({ baseline: baselineFrom(running), exemptions }))
    expect(evaluation.suppressed.map((finding) => finding.id)).toEqual(['CVE-2021-44228'])
    expect(evaluation.warnings.map((finding) => finding.id)).toEqual(['CVE-2023-0286'])
    expect(evaluation.exemptions.expired.map((exemption) => exemption.id)).toEqual(['CVE-2023-0286'])
  })

  const store = useStoreFixture()
  const BASELINE_DIGEST = `sha256:${'b'.repeat(64)}`

  it('reads the baseline from the store, and judges strictly (everything) when the store has none', async () => {
    await store.serve([answer.image(sampleImageBody())], {
      images: { [BASELINE_DIGEST]: [answer.image({ ...running, Digest: BASELINE_DIGEST })] },
    })
    const withBaseline = await store.gate(['--format', 'json'], {
      POLICY_BASELINE: `registry.example.com/app@${BASELINE_DIGEST}`,
    })
    expect(withBaseline.code, withBaseline.stderr).toBe(EXIT.VIOLATION)
    expect(withBaseline.stderr).toContain('3 findings in the running image; only new or worse findings block')
    const report = JSON.parse(withBaseline.stdout)
    expect(report.blocking.map((finding: { id: string }) => finding.id)).toEqual(['CVE-2021-45046', 'CVE-2023-0464'])
    expect(report.warnings).toHaveLength(2)
    await store.store.close()
    await store.serve([answer.image(sampleImageBody())])
    const missing = await store.gate(['--format', 'json', '--baseline', `registry.example.com/app@${BASELINE_DIGEST}`])
    expect(missing.stderr).toContain('no scan data for it here, so every finding is judged as new (strict)')
    expect(JSON.parse(missing.stdout).blocking).toHaveLength(4)
  })

  it('with --input, takes the baseline from --baseline-input, and refuses --baseline alone (exit 2)', async () => {
    const files = writeFiles({
      'body.json': JSON.stringify(sampleImageBody()),
      'running.json': JSON.stringify(running),
    })
    const run = await runGate(
      ['--input', files['body.json']!, '--baseline-input', files['running.json']!, '--format', 'json', SAMPLE_IMAGE],
      { env: { GATE: 'high' } },
    )
    expect(JSON.parse(run.stdout).blocking).toHaveLength(2)
    const alone = await runGate(
      ['--input', files['body.json']!, '--baseline', `app@${BASELINE_DIGEST}`, SAMPLE_IMAGE],
      { env: { GATE: 'high' } },
    )
    expect(alone.code).toBe(EXIT.USAGE)
    expect(alone.stderr).toContain(
      "--baseline with --input: there is nowhere to read the baseline's scan from, so give its saved document with " +
        '--baseline-input',
    )
  })
})
