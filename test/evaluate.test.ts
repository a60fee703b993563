// The verdict: severities, the highest rating, counts, findings, the text summary and the Tekton results; and
// property tests (fast-check) on Image documents nobody wrote by hand, against a deliberately naive model.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { evaluate } from '../gate/evaluate.ts'
import { buildJsonReport, renderText, tektonResults } from '../gate/render.ts'
import { redact } from '../gate/safe-text.ts'
import { type Gate, GATES, isAtOrAbove, normaliseSeverity, NoVerdictError } from '../gate/vocabulary.ts'
import { image, pkg, rating, SAMPLE_DIGEST, sampleImageBody, vuln } from './support/documents.ts'

const HEX = 'a'.repeat(64)

const severityText = fc.oneof(
  fc.constantFrom(
    'Critical',
    'CRITICAL',
    ' critical',
    'High',
    'HIGH ',
    'Important',
    'important',
    'Medium',
    'MODERATE',
    'Low',
    'low',
    'Negligible',
    'Unknown',
    'UnknownSeverity',
    'none',
    'info',
    '',
    'Highest',
    'crit',
  ),
  fc.string({ maxLength: 8 }),
  fc.constant(null),
  fc.integer(),
)
const ratingArbitrary = fc.record(
  {
    Severity: severityText,
    Score: fc.oneof(fc.double({ min: 0, max: 10, noNaN: true }), fc.constant(0), fc.constant(null), fc.constant('9.8')),
  },
  { requiredKeys: [] },
)
const listOf = <T>(item: fc.Arbitrary<T>, maxLength: number) =>
  fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 6, arbitrary: fc.array(item, { maxLength }) })
// A small pool of IDs so that the same CVE turns up in several packages; sometimes no CVEID at all.
const vulnerability = fc.record(
  {
    CVEID: fc.oneof(
      fc.constantFrom('CVE-2021-44228', 'CVE-2023-0286', 'cve-2023-0286', 'GHSA-jfh8-c2jp-5v3q', 'CVE-2016-2781', ''),
      fc.constant(null),
    ),
    ID: fc.nat(50),
    Ratings: listOf(ratingArbitrary, 4),
  },
  { requiredKeys: ['ID'] },
)
const packageArbitrary = fc.record(
  {
    Name: fc.constantFrom('openssl', 'zlib', 'log4j-core', ''),
    Version: fc.constantFrom('1.0', '2.14.1', ''),
    Vulnerabilities: listOf(vulnerability, 6),
  },
  { requiredKeys: [] },
)
const imageArbitrary = (maxPackages: number) =>
  fc.record(
    { Digest: fc.constant(SAMPLE_DIGEST), Packages: listOf(packageArbitrary, maxPackages) },
    { requiredKeys: ['Digest'] },
  )

type Doc = {
  Packages?: Array<{
    Name?: unknown
    Vulnerabilities?: Array<{
      CVEID?: unknown
      ID: number
      Ratings?: Array<{ Severity?: unknown; Score?: unknown }> | null
    }> | null
  }> | null
}

/** The rules written out the slow, obvious way: flatten, rank, group. */
function referenceModel(document: Doc, gate: Gate) {
  const rank = (raw: unknown): number => {
    if (typeof raw !== 'string') return 0
    const word = raw.trim().toLowerCase()
    return word === 'critical'
      ? 4
      : word === 'high' || word === 'important'
        ? 3
        : word === 'medium' || word === 'moderate'
          ? 2
          : word === 'low'
            ? 1
            : 0
  }
  const names = ['unknown', 'low', 'medium', 'high', 'critical'] as const
  const findings = (document.Packages ?? []).flatMap((p, pi) =>
    (p.Vulnerabilities ?? []).map((v, vi) => ({
      id: typeof v.CVEID === 'string' && v.CVEID.trim() ? v.CVEID.trim() : `store-id:${v.ID}`,
      path: `${pi}/${vi}`,
      rank: Math.max(0, ...(v.Ratings ?? []).map((r) => rank(r.Severity))),
    })),
  )
  const worst = new Map<string, number>()
  for (const finding of findings) worst.set(finding.id, Math.max(worst.get(finding.id) ?? 0, finding.rank))
  const counts = { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 }
  for (const value of worst.values()) counts[names[value]!]++
  const threshold = gate === 'none' ? Infinity : names.indexOf(gate)
  const blocking = findings.filter((finding) => finding.rank > 0 && finding.rank >= threshold).length
  return { counts, findings: findings.length, blocking, passed: blocking === 0 }
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    const j = seed % (i + 1)
    ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}

describe('normaliseSeverity', () => {
  it.each([
    ['Critical', 'critical'],
    ['CRITICAL', 'critical'],
    [' critical ', 'critical'],
    ['High', 'high'],
    ['HIGH', 'high'],
    ['Important', 'high'],
    ['Medium', 'medium'],
    ['moderate', 'medium'],
    ['Low', 'low'],
    ['Negligible', 'unknown'],
    ['Unknown', 'unknown'],
    ['UnknownSeverity', 'unknown'],
    ['none', 'unknown'],
    ['info', 'unknown'],
    ['', 'unknown'],
    [null, 'unknown'],
    [undefined, 'unknown'],
    [7, 'unknown'],
    ['Highest', 'unknown'],
  ])('%j is %s', (raw, severity) => {
    expect(normaliseSeverity(raw)).toBe(severity)
  })

  it('never lets unknown reach a gate, and gate none never fails', () => {
    for (const gate of ['low', 'medium', 'high', 'critical'] as const) expect(isAtOrAbove('unknown', gate)).toBe(false)
    for (const severity of ['critical', 'high', 'medium', 'low', 'unknown'] as const)
      expect(isAtOrAbove(severity, 'none')).toBe(false)
  })
})

describe('evaluate', () => {
  it('counts the reference sample by highest rating, as the API notes work out', () => {
    const result = evaluate(sampleImageBody(), 'high', SAMPLE_DIGEST)
    expect(result.counts).toEqual({ critical: 2, high: 2, medium: 1, low: 0, unknown: 0 })
    expect(result).toMatchObject({ uniqueVulnerabilities: 5, findings: 5, passed: false })
    expect(result.blocking.map((finding) => `${finding.id} ${finding.severity} ${finding.score}`)).toEqual([
      'CVE-2021-44228 critical 10',
      'CVE-2021-45046 critical 9',
      'CVE-2023-0464 high 7.5',
      'CVE-2023-0286 high 7.4',
    ])
  })

  it.each<[Gate, boolean, number]>([
    ['none', true, 0],
    ['critical', false, 2],
    ['high', false, 4],
    ['medium', false, 5],
    ['low', false, 5],
  ])('the sample against gate %s passes: %s, with %i blocking', (gate, passed, blocking) => {
    const result = evaluate(sampleImageBody(), gate)
    expect(result.passed).toBe(passed)
    expect(result.blocking).toHaveLength(blocking)
  })

  it.each([
    ['Packages null', { Digest: SAMPLE_DIGEST, Packages: null }],
    ['Packages missing', { Digest: SAMPLE_DIGEST }],
    ['Packages empty', image()],
    ['Vulnerabilities null', image({ Name: 'a', Vulnerabilities: null })],
    ['Vulnerabilities missing', image({ Name: 'a' })],
  ])('%s means no vulnerabilities', (_name, document) => {
    expect(evaluate(document, 'low')).toMatchObject({
      counts: { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 },
      findings: 0,
      passed: true,
    })
  })

  it.each([
    ['Ratings null', { CVEID: 'CVE-1', Ratings: null }],
    ['Ratings missing', { CVEID: 'CVE-1' }],
    ['Ratings empty', vuln('CVE-1')],
    ['Severity null', vuln('CVE-1', rating(null, 9.8))],
    ['Severity missing', vuln('CVE-1', { Score: 9.8 })],
    ['Severity negligible', vuln('CVE-1', rating('Negligible'))],
    ['Severity UnknownSeverity', vuln('CVE-1', rating('UnknownSeverity'))],
  ])('%s counts as unknown, which no gate fails on', (_name, vulnerability) => {
    const result = evaluate(image(pkg('a', '1', vulnerability)), 'low')
    expect(result).toMatchObject({ counts: { unknown: 1 }, findings: 1, passed: true })
  })

  it('takes the highest rating, so a CVE rated High and Critical is critical and counted once', () => {
    const result = evaluate(
      image(pkg('a', '1', vuln('CVE-1', rating('High', 7.5), rating('CRITICAL', 9.1), rating('low')))),
      'critical',
    )
    expect(result.counts).toEqual({ critical: 1, high: 0, medium: 0, low: 0, unknown: 0 })
    expect(result.blocking).toEqual([
      {
        id: 'CVE-1',
        severity: 'critical',
        score: 9.1,
        package: 'a',
        version: '1',
        rule: 'severity',
        fix: { state: 'unknown' },
      },
    ])
  })

  it('counts a CVE found in two packages once, by its worst rating, and lists both findings', () => {
    const result = evaluate(
      image(pkg('a', '1', vuln('CVE-1', rating('medium'))), pkg('b', '2', vuln('CVE-1', rating('high')))),
      'medium',
    )
    expect(result).toMatchObject({ uniqueVulnerabilities: 1, findings: 2, counts: { high: 1, medium: 0 } })
    expect(result.blocking.map((finding) => `${finding.package} ${finding.severity}`)).toEqual(['b high', 'a medium'])
  })

  it('finds lowercase and padded severities that the seed misses', () => {
    expect(evaluate(image(pkg('a', '1', vuln('CVE-1', rating(' critical ')))), 'critical').passed).toBe(false)
    expect(evaluate(image(pkg('a', '1', vuln('CVE-1', rating('HIGH')))), 'high').passed).toBe(false)
  })

  it('names vulnerabilities without a CVEID by their store ID', () => {
    const result = evaluate(image(pkg('a', '1', { ID: 5501, Ratings: [rating('High')] })), 'high')
    expect(result.blocking[0]?.id).toBe('store-id:5501')
  })

  it.each([
    ['a list', [], /the document is a list, expected an object/],
    ['a string', 'x', /the document is a string/],
    ['null', null, /the document is null/],
    ['an error body', { message: 'image not found' }, /neither Digest nor Packages/],
    ['Packages as an object', { Digest: SAMPLE_DIGEST, Packages: {} }, /Packages is an object, expected a list/],
    ['a package that is a number', image(7), /Packages\[0\] is a number/],
    ['Vulnerabilities as a string', image({ Vulnerabilities: 'x' }), /Packages\[0\]\.Vulnerabilities is a string/],
    [
      'a rating that is null',
      image(pkg('a', '1', { CVEID: 'x', Ratings: [null] })),
      /Packages\[0\]\.Vulnerabilities\[0\]\.Ratings\[0\] is null/,
    ],
  ])('refuses %s as malformed (no verdict)', (_name, document, message) => {
    expect(() => evaluate(document, 'high')).toThrow(NoVerdictError)
    expect(() => evaluate(document, 'high')).toThrow(message)
  })

  it('refuses a report for another digest', () => {
    expect(() => evaluate({ Digest: `sha256:${HEX}`, Packages: [] }, 'high', SAMPLE_DIGEST)).toThrow(
      /describes sha256:a{64}, not sha256:a24a/,
    )
  })
})

describe('renderText and redact', () => {
  it('says so plainly when an image has no vulnerabilities', () => {
    const text = renderText(
      evaluate(image(), 'high'),
      { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST },
      { color: false },
    )
    expect(text).toContain('No vulnerabilities reported for this image.')
    expect(text).toContain('PASS: nothing blocks at gate high.')
  })

  it('caps the listed findings and says how many more there are', () => {
    const many = image(
      pkg('a', '1', ...Array.from({ length: 25 }, (_, i) => vuln(`CVE-2026-${1000 + i}`, rating('High', 7)))),
    )
    const text = renderText(
      evaluate(many, 'high'),
      { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST },
      { color: false },
    )
    expect(text).toContain('... and 5 more (--format json lists up to 5000)')
    expect(text).toContain('FAIL: 25 vulnerabilities (25 findings) block at gate high.')
  })

  it('colours only when asked', () => {
    const ref = { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }
    expect(renderText(evaluate(sampleImageBody(), 'high'), ref, { color: true })).toContain('\x1b[31m')
    expect(renderText(evaluate(sampleImageBody(), 'high'), ref, { color: false })).not.toContain('\x1b[')
  })

  it('replaces every occurrence of a secret', () => {
    expect(redact('a tok b tok', ['tok'])).toBe('a [redacted] b [redacted]')
    expect(redact('unchanged', [''])).toBe('unchanged')
  })
})

describe('tektonResults', () => {
  it('lists at most ten blocking IDs, once each, and says how many more', () => {
    const many = image(
      ...Array.from({ length: 12 }, (_, i) =>
        pkg(`p${i}`, '1', vuln(`CVE-${i}`, rating('High')), vuln(`CVE-${i}`, rating('High'))),
      ),
    )
    const evaluation = evaluate(many, 'high')
    const results = tektonResults(buildJsonReport({ image: null, gate: 'high' }, { evaluation }))
    expect(results.blocking).toBe('CVE-0,CVE-1,CVE-10,CVE-11,CVE-2,CVE-3,CVE-4,CVE-5,CVE-6,CVE-7 (+2 more)')
    expect(results).toMatchObject({ verdict: 'fail', high: '12', critical: '0' })
  })
})

describe('evaluate, on generated Image documents', () => {
  it('never throws and agrees with the reference model', () => {
    fc.assert(
      fc.property(imageArbitrary(12), fc.constantFrom(...GATES), (document, gate) => {
        const result = evaluate(document, gate, SAMPLE_DIGEST)
        const expected = referenceModel(document as Doc, gate)
        expect(result.counts).toEqual(expected.counts)
        expect(result.findings).toBe(expected.findings)
        expect(result.blocking).toHaveLength(expected.blocking)
        expect(result.passed).toBe(expected.passed)
        expect(Object.values(result.counts).reduce((sum, count) => sum + count, 0)).toBe(result.uniqueVulnerabilities)
      }),
      { numRuns: 500 },
    )
  })

  it('never turns a pass into a fail when the gate is raised', () => {
    fc.assert(
      fc.property(imageArbitrary(12), (document) => {
        // From the strictest gate to the most lenient: once it passes, every higher gate passes too.
        const passes = (['low', 'medium', 'high', 'critical', 'none'] as const).map(
          (gate) => evaluate(document, gate).passed,
        )
        for (let i = 1; i < passes.length; i++) if (passes[i - 1]) expect(passes[i]).toBe(true)
        expect(passes.at(-1)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('does not depend on the order of packages, vulnerabilities or ratings', () => {
    fc.assert(
      fc.property(imageArbitrary(12), fc.constantFrom(...GATES), fc.nat(), (document, gate, seed) => {
        const reordered = {
          ...document,
          Packages:
            document.Packages &&
            shuffled(document.Packages, seed).map((p) => ({
              ...p,
              Vulnerabilities:
                p.Vulnerabilities &&
                shuffled(p.Vulnerabilities, seed + 1).map((v) => ({
                  ...v,
                  Ratings: v.Ratings && shuffled(v.Ratings, seed + 2),
                })),
            })),
        }
        const before = evaluate(document, gate)
        const after = evaluate(reordered, gate)
        expect(after.counts).toEqual(before.counts)
        expect(after.passed).toBe(before.passed)
        // Findings without a CVEID or store ID would be named by position; the pool above always has an ID.
        expect(after.blocking).toEqual(before.blocking)
      }),
      { numRuns: 300 },
    )
  })

  it('handles large documents: thousands of packages, duplicate IDs everywhere', () => {
    fc.assert(
      fc.property(
        fc.array(packageArbitrary, { minLength: 2_000, maxLength: 3_000 }),
        fc.constantFrom(...GATES),
        (packages, gate) => {
          const document = { Digest: SAMPLE_DIGEST, Packages: packages }
          const result = evaluate(document, gate)
          expect(result.counts).toEqual(referenceModel(document as Doc, gate).counts)
          expect(result.uniqueVulnerabilities).toBeLessThanOrEqual(56) // 5 CVE IDs and 51 store IDs at most
        },
      ),
      { numRuns: 5 },
    )
  })

  it('answers any JSON value with a verdict or a NoVerdictError, nothing else', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue(), fc.record({ Digest: fc.constant(SAMPLE_DIGEST), Packages: fc.jsonValue() })),
        (value) => {
          try {
            const result = evaluate(value, 'high')
            expect(typeof result.passed).toBe('boolean')
          } catch (error) {
            expect(error).toBeInstanceOf(NoVerdictError)
            expect((error as NoVerdictError).code).toBe('MALFORMED_RESPONSE')
          }
        },
      ),
      { numRuns: 1_000 },
    )
  })
})
